"""The example at the top of SPEC.md, verbatim, in every mode."""

from urllib.request import urlopen

from tserver import TestServer


def test_spec_example(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"response-data")
        assert urlopen(srv.get_url(), b"request-data").read() == b"response-data"
        assert srv.get_request("data") == b"request-data"
        srv.assert_request().has_method("POST").has_data(b"request-data")
