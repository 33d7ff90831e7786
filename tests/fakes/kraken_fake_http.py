"""A minimal HTTP/1.1 server for the fake Kraken: h11 over an anyio TCP listener on 127.0.0.1.

Written for control, not speed: the fake decides per request to answer, answer late, or drop the connection
without answering (the "request sent, outcome unknown" case), which a framework would hide.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import h11
from anyio.abc import SocketStream, TaskStatus

__all__ = ["HttpReply", "HttpRequest", "serve_http"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpReply:
    """``drop``: close the connection without answering; ``delay_s``: wait this long before answering."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay_s: float = 0.0
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], Awaitable[HttpReply]]


async def _read_request(stream: SocketStream, conn: h11.Connection) -> HttpRequest | None:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(65536)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return None
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body.extend(event.data)
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            return HttpRequest(request.method.decode(), request.target.decode(), headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


async def _connection(stream: SocketStream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            try:
                request = await _read_request(stream, conn)
            except h11.RemoteProtocolError:
                return
            if request is None:
                return
            reply = await handler(request)
            if reply.delay_s:
                await anyio.sleep(reply.delay_s)
            if reply.drop:
                return
            headers = [
                ("content-type", reply.content_type),
                ("content-length", str(len(reply.body))),
                *reply.headers.items(),
            ]
            try:
                await stream.send(conn.send(h11.Response(status_code=reply.status, headers=headers)) or b"")
                await stream.send(conn.send(h11.Data(data=reply.body)) or b"")
                await stream.send(conn.send(h11.EndOfMessage()) or b"")
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return


async def serve_http(handler: Handler, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
    """Serve ``handler`` on 127.0.0.1 at a free port (reported through ``task_status``) until cancelled."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener:
        task_status.started(port)

        async def handle(stream: SocketStream) -> None:
            await _connection(stream, handler)

        await listener.serve(handle)
