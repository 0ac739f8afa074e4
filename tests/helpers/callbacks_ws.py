"""A callback that answers with a WebSocket: module-level, for subprocess mode."""

from __future__ import annotations

from tserver import Request, Response
from tserver.ws import Close, WebSocket


def websocket_by_query(request: Request) -> Response:
    """Greet with the ``greeting`` argument, then close."""
    return Response(websocket=WebSocket([request.args.get("greeting", "hello"), Close()]))
