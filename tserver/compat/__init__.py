"""Drop-in replacements for the APIs of lorien's ``test_server`` (SPEC §15).

- `tserver.compat.test_server` mirrors test_server 0.1.x (``Response``
  objects, ``add_response``, ``get_request``);
- `tserver.compat.test_server_2017` mirrors the 2017 dict API
  (``server.response["data"] = ...``, ``server.request["path"]``).

A suite written for test_server changes only its import::

    from tserver.compat.test_server import TestServer, Response

Both modules are built on tserver's public API alone, and each server
keeps its native `tserver.TestServer` as ``.native``: a suite can move to
the native API one call at a time.  docs/migration.rst lists every
behaviour in which test_server and tserver proper differ.
"""

__all__: list[str] = []
