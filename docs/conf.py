"""Sphinx configuration of the tserver documentation.

Build with warnings as errors and every cross-reference checked::

    sphinx-build -n -W -b html docs docs/_build/html

The build needs no network.  Intersphinx (links into the Python, Tornado and
PyHamcrest docs) is switched on only when ``TSERVER_DOCS_INTERSPHINX=1`` is
set, because fetching the inventories needs the internet; offline, the names
of those projects are listed in ``nitpick_ignore_regex`` instead, so that a
reference to ``ssl.SSLContext`` renders as plain code rather than failing the
nitpicky build.  References to tserver's own names are always checked.

The rule for examples: each one on a page is a test under ``tests/examples/``
shown with ``literalinclude``, and the ``>>>`` examples of docstrings run in
``tests/test_docs.py``, so that the test suite runs what the docs show.
``tests/test_docs.py`` also fails on a page that holds a Python block (or a
failure message) of its own instead of including it from ``tests/examples/``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tserver._version import __version__  # noqa: E402  (after the path is set)

# -- project -----------------------------------------------------------------

project = "tserver"
author = "the tserver authors"
copyright = "the tserver authors"
release = __version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

# Single backticks are cross-references: `TestServer`, `Request.data`.
default_role = "py:obj"
nitpicky = True
primary_domain = "py"
highlight_language = "python3"
exclude_patterns = ["_build", "violations_table.rst", "violations_catalogue.rst"]
root_doc = "index"

# -- autodoc -----------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False
add_module_names = False
python_use_unqualified_type_names = True

# -- intersphinx -------------------------------------------------------------

_ONLINE = os.environ.get("TSERVER_DOCS_INTERSPHINX") == "1"
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "tornado": ("https://www.tornadoweb.org/en/stable", None),
        "hamcrest": ("https://pyhamcrest.readthedocs.io/en/latest", None),
    }
    if _ONLINE
    else {}
)
intersphinx_disabled_reftypes = ["std:doc"]

# Names that belong to other projects.  Offline they cannot resolve (no
# inventory); online intersphinx resolves the ones it knows and the rest are
# still skipped.  Never list tserver names here: those must resolve.
_EXTERNAL_MODULES = (
    "abc",
    "argparse",
    "ast",
    "asyncio",
    "collections",
    "concurrent",
    "contextlib",
    "dataclasses",
    "datetime",
    "email",
    "enum",
    "hamcrest",
    "http",
    "io",
    "json",
    "os",
    "pathlib",
    "pickle",
    "pytest",
    "re",
    "selectors",
    "signal",
    "socket",
    "ssl",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "tornado",
    "trustme",
    "types",
    "typing",
    "unittest",
    "urllib",
    "_pytest",
    "_ssl",
    # clients named in the docs
    "aiohttp",
    "eventlet",
    "gevent",
    "httpx",
    "pycurl",
    "requests",
    "urllib3",
)
_BUILTINS = (
    "AssertionError",
    "BaseException",
    "Exception",
    "KeyError",
    "LookupError",
    "TimeoutError",
    "TypeError",
    "ValueError",
    "Ellipsis",
    "None",
    "NotImplemented",
    "True",
    "False",
    "Any",
    "bool",
    "bytes",
    "callable",
    "dict",
    "float",
    "int",
    "isinstance",
    "iter",
    "list",
    "object",
    "repr",
    "set",
    "str",
    "tuple",
    "type",
    "Matcher",
    "BaseMatcher",
    "Description",
    "Awaitable",
    "Callable",
    "Iterable",
    "Iterator",
    "Mapping",
    "Sequence",
    "TracebackType",
    "SSLContext",
    "Path",
    "datetime",
    "Pytester",
    "FixtureRequest",
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(map(re.escape, _EXTERNAL_MODULES))})(\..*)?"),
    (r"py:.*", rf"({'|'.join(map(re.escape, _BUILTINS))})"),
    # type variables of private modules, shown in signatures (``_T``)
    (r"py:.*", r"tserver\._\w+\._[A-Z]\w*"),
    # the compatibility modules are documented without index entries (their
    # TestServer, Request... would make tserver's own names ambiguous)
    (r"py:.*", r"(tserver\.compat\..*|HttpHeaderStream)"),
]

# -- HTML --------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"tserver {release}"
html_theme_options = {
    "description": "a real HTTP server for testing HTTP clients",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_static_path: list[str] = []


# -- vital statistics ----------------------------------------------------------


def _code_size() -> tuple[int, int]:
    """The number of modules of the package and their non-blank lines."""
    files = sorted((ROOT / "tserver").glob("*.py"))
    lines = sum(
        1
        for path in files
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    return len(files), lines


_MODULES, _LINES = _code_size()
rst_epilog = f"""
.. |modules| replace:: {_MODULES}
.. |lines| replace:: {round(_LINES, -2):,}
"""


# -- short names -------------------------------------------------------------

#: Where a bare name in a docstring may live.  A docstring of
#: ``tserver.testing`` that says `TestServer` means `tserver.TestServer`;
#: Sphinx looks only in the current module, so this hook retries a missing
#: Python reference under each of these prefixes, first match wins.
_PACKAGE_PREFIXES = ("tserver.", "tserver._assertions.", "tserver.matchers.")


def _resolve_in_package(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    for prefix in _PACKAGE_PREFIXES:
        name = prefix + target
        if name in domain.objects:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], name, node, contnode
            )
    return None


def setup(app: Any) -> dict[str, Any]:
    """Register the short-name resolver."""
    app.connect("missing-reference", _resolve_in_package)
    return {"parallel_read_safe": True}
