"""tserver: a real HTTP server on loopback for testing HTTP clients.

Start a `TestServer`, tell it what to answer, point the client under test at
``srv.url``, then assert on every request it recorded::

    >>> from urllib.request import urlopen
    >>> from tserver import TestServer
    >>> with TestServer() as srv:
    ...     srv.set_response("data", b"response-data")
    ...     urlopen(srv.url, b"request-data").read()
    ...     srv.assert_request().has_method("POST").has_data(b"request-data")
    b'response-data'
    <RequestAssertion request #0 of 1: POST />

The matchers live in `tserver.matchers`, the Tornado integration in
`tserver.testing`, the pytest fixtures in `tserver.pytest_plugin`.
"""

from typing import TYPE_CHECKING, Any

from ._cookie import Cookie as Cookie
from ._errors import NoRequestError as NoRequestError
from ._errors import ServerDiedError as ServerDiedError
from ._errors import ServerStartError as ServerStartError
from ._errors import ServerStateError as ServerStateError
from ._errors import TestServerError as TestServerError
from ._errors import WaitTimeoutError as WaitTimeoutError
from ._events import Event as Event
from ._headers import Headers as Headers
from ._headers import MultiDict as MultiDict
from ._held import Held as Held
from ._records import Connection as Connection
from ._records import Exchange as Exchange
from ._records import TLSInfo as TLSInfo
from ._request import Request as Request
from ._request import UploadedFile as UploadedFile
from ._response import UNSET as UNSET
from ._response import GoAway as GoAway
from ._response import Raw as Raw
from ._response import ResetStream as ResetStream
from ._response import Response as Response
from ._version import __version__ as __version__
from ._violations import VIOLATIONS as VIOLATIONS
from ._websocket import WebSocket as WebSocket

if TYPE_CHECKING:
    from ._server import TestServer as TestServer

__all__ = (
    "UNSET",
    "VIOLATIONS",
    "Connection",
    "Cookie",
    "Event",
    "Exchange",
    "GoAway",
    "Headers",
    "Held",
    "MultiDict",
    "NoRequestError",
    "Raw",
    "Request",
    "ResetStream",
    "Response",
    "ServerDiedError",
    "ServerStartError",
    "ServerStateError",
    "TLSInfo",
    "TestServer",
    "TestServerError",
    "UploadedFile",
    "WaitTimeoutError",
    "WebSocket",
    "__version__",
)


def __getattr__(name: str) -> Any:
    # TestServer is imported on first use: the child process of subprocess
    # mode imports this package too, and needs none of the facade.
    if name == "TestServer":
        from ._server import TestServer

        globals()["TestServer"] = TestServer
        return TestServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
