"""Callbacks for the compatibility modules' tests: module-level, so that a
subprocess-mode child can import them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tserver.compat.test_server_2017 import Handler


def dict_answer() -> Mapping[str, Any]:
    """A test_server 0.1.x callback: no argument, a dict back."""
    return {"type": "response", "status": 201, "headers": [("X-Cb", "yes")], "data": b"from-cb"}


def wrong_type() -> Mapping[str, Any]:
    return {"type": "nonsense"}


def not_a_dict() -> Any:
    return [1, 2]


def str_data() -> Mapping[str, Any]:
    return {"type": "response", "data": "text, not bytes"}


def raises() -> Mapping[str, Any]:
    raise RuntimeError("the callback broke")


def raw_answer() -> bytes:
    return b"HTTP/1.1 299 Custom\r\nX-Raw: 1\r\nContent-Length: 3\r\n\r\nraw"


def raw_not_bytes() -> Any:
    return "text"


def handler_style(handler: Handler) -> None:
    """A 2017 callback: a Tornado-handler-like object."""
    handler.set_status(202)
    handler.set_header("X-Path", handler.request.path)
    handler.write(b"hello ")
    handler.write("world")
    handler.finish()


def handler_generator(handler: Handler) -> Iterator[dict[str, Any]]:
    """A 2017 generator callback that pauses."""
    handler.write(b"before ")
    yield {"type": "sleep", "time": 0.01}
    handler.write(b"after")
    handler.finish()


def handler_extras(handler: Handler) -> None:
    """A 2017 callback using the rest of the handler's calls."""
    handler.add_header("X-Many", "1")
    handler.add_header("X-Many", "2")
    handler.set_header("X-Gone", "x")
    handler.clear_header("X-Gone")
    handler.finish({"ok": True})
