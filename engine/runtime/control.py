"""The engine's control socket: its facade, served to processes of the same user on this machine.

Why it exists: an MCP server's HTTP and protocol work costs about a millisecond of CPU per call (uvicorn,
Starlette, the SDK's transport, validation). In the engine's own process, clients that read hard take that time
from trading. Behind this socket the MCP server runs in a process of its own (the gateway that ``run --mcp-http``
starts, or a second ``serve`` on a state file in use, which attaches), and a call costs the engine only the
facade's own work and a line of JSON.

* The socket is a Unix-domain socket beside the state file (``<db>.sock``, or a short name in the temporary folder
  when that path is too long for a socket), created owner-only, and a peer of another user is refused where the
  system says who connected. Its path is recorded in the state lock, so another process finds it there.
* A caller here is a client, never the operator: the operator's word comes through :mod:`engine.runtime.operator`.
* Reads are admitted within a budget of the event loop's time (:class:`ReadBudget`): a flood of reads slows the
  reads, never trading. Changes and the emergency stop never wait for it.

The wire format and the call table: :mod:`engine.runtime.control_protocol`.
"""

import hashlib
import logging
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from engine.errors import FacadeError
from engine.runtime.control_protocol import (
    CALLS,
    MAX_LINE,
    PROTOCOL,
    ControlProtocolError,
    check_args,
    decode,
    encode,
    error_to_wire,
)

if TYPE_CHECKING:
    from engine.runtime.facade import EngineFacade

__all__ = ["OFF_LOOP", "ControlServer", "ReadBudget", "control_path_for", "supported"]

OFF_LOOP: ContextVar[list[float] | None] = ContextVar("trading_mcp_off_loop", default=None)
"""Seconds the current call spent waiting off the event loop (for the store): not charged to the read budget, so
a read that sleeps while the writer catches up does not spend other readers' share (see Engine.read)."""

log = logging.getLogger(__name__)
_SOCKET_PATH_MAX = 100  # sun_path holds 104 to 108 bytes, depending on the system
CALL_OVERHEAD_S = 0.0005


def supported() -> bool:
    """Whether this platform has Unix-domain sockets (not Windows, where the MCP server stays in-process)."""
    return hasattr(socket, "AF_UNIX")


def control_path_for(db_path: Path) -> Path:
    """Where the engine using ``db_path`` listens: beside it, or in the temporary folder if that path is too long."""
    beside = db_path.resolve().with_name(db_path.name + ".sock")
    if len(os.fsencode(beside)) <= _SOCKET_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(db_path.resolve())).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"trading-mcp-{digest}.sock"


class ReadBudget:
    """At most ``share`` of the event loop's time, over any ``window_s``, goes to answering reads.

    Each answered read is charged the time it held the loop; a read that arrives when the window is spent waits
    (asleep, costing nothing) until old charges leave the window. With ``share`` 0.1, a flood of reads costs a
    max-speed replay about a tenth of its pace at most, and a single read never waits.
    """

    def __init__(self, share: float = 0.1, window_s: float = 0.25, clock: Callable[[], float] = time.perf_counter):
        if not 0 < share <= 1 or window_s <= 0:
            raise ValueError("share must be in (0, 1] and window_s positive")
        self.share = share
        self.window_s = window_s
        self._clock = clock
        self._charges: deque[tuple[float, float]] = deque()
        self._spent = 0.0
        self.waited = 0

    def _expire(self, now: float) -> None:
        while self._charges and self._charges[0][0] <= now - self.window_s:
            self._spent -= self._charges.popleft()[1]

    def delay(self) -> float:
        """How long a read arriving now must wait (0: it may go at once)."""
        now = self._clock()
        self._expire(now)
        if self._spent <= self.share * self.window_s or not self._charges:
            return 0.0
        # Wait until enough old charges have left the window.
        excess = self._spent - self.share * self.window_s
        for at, cost in self._charges:
            excess -= cost
            if excess <= 0:
                return max(0.0, at + self.window_s - now)
        return self.window_s

    async def admit(self) -> None:
        while (wait := self.delay()) > 0:
            self.waited += 1
            await anyio.sleep(wait)

    def charge(self, seconds: float) -> None:
        self._charges.append((self._clock(), seconds))
        self._spent += seconds


class ControlServer:
    """Serves one engine's facade on its control socket (see the module's docstring)."""

    def __init__(self, facade: "EngineFacade", path: Path, *, budget: ReadBudget | None = None) -> None:
        self.facade = facade
        self.path = path
        self.budget = budget or ReadBudget()
        self.connections = 0
        self.calls = 0
        self._streams: set[SocketStream] = set()

    async def serve(self, *, task_status: TaskStatus[Path] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; the socket file is removed when it stops.

        Raises:
            OSError: the socket cannot be created.
        """
        # The state lock is held, so a socket file left here is a crashed engine's: it is nobody's now.
        self.path.unlink(missing_ok=True)
        listener = await anyio.create_unix_listener(self.path, mode=0o600)
        task_status.started(self.path)
        try:
            async with listener:
                await listener.serve(self._connection)
        finally:
            self.path.unlink(missing_ok=True)

    async def close_connections(self) -> None:
        """Close every client's connection, ending each one's handler the way a peer's hang-up does.

        The engine calls this before it cancels the server: a read that is cancelled at the moment its socket
        turns readable makes asyncio report an error in a callback (anyio's raw UNIX sockets), while a read woken
        by its stream's close simply ends.
        """
        for stream in list(self._streams):
            await stream.aclose()

    async def _connection(self, stream: SocketStream) -> None:
        if not _same_user(stream):
            await stream.aclose()
            return
        self.connections += 1
        self._streams.add(stream)
        lock = anyio.Lock()

        async def send(message: dict[str, Any]) -> None:
            async with lock:
                await stream.send(encode(message))

        facade = self.facade
        hello = {
            "protocol": PROTOCOL,
            "mode": facade.mode,
            "venue": facade.venue,
            "pairs": facade.pair_names(),
            "strategies": facade.strategy_names(),
        }
        unsubscribe: Callable[[], None] | None = None
        try:
            await send({"hello": hello})
            receive = BufferedByteReceiveStream(stream)
            async with anyio.create_task_group() as tg:
                while True:
                    try:
                        message = decode(await receive.receive_until(b"\n", MAX_LINE))
                    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                        break
                    except (anyio.DelimiterNotFound, ControlProtocolError) as exc:
                        log.warning("control socket: closing a connection that sent %s", type(exc).__name__)
                        break
                    if message.get("call") == "subscribe":
                        if unsubscribe is None:
                            unsubscribe = self._push_changes(tg, send)
                        await send({"id": message.get("id"), "ok": None})
                        continue
                    tg.start_soon(self._answer, message, send)
                tg.cancel_scope.cancel()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the peer went away
        finally:
            self._streams.discard(stream)
            if unsubscribe is not None:
                unsubscribe()
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    def _push_changes(
        self, tg: anyio.abc.TaskGroup, send: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> Callable[[], None]:
        pending: set[str] = set()
        wake = anyio.Event()

        def on_change(topics: set[str]) -> None:
            nonlocal wake
            pending.update(topics)
            wake.set()

        async def pusher() -> None:
            nonlocal wake
            while True:
                await wake.wait()
                wake = anyio.Event()
                topics = sorted(pending)
                pending.clear()
                await send({"changes": topics})

        tg.start_soon(pusher)
        return self.facade.subscribe_changes(on_change)

    async def _answer(self, message: dict[str, Any], send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        call_id = message.get("id")
        name = str(message.get("call"))
        try:
            args = check_args(name, message.get("args", {}))
            read = CALLS[name].kind == "read"
            if read:
                await self.budget.admit()
            waited: list[float] = []
            token = OFF_LOOP.set(waited)
            started = time.perf_counter()
            try:
                result = await self._invoke(name, args, call_id, send)
            finally:
                OFF_LOOP.reset(token)
            if read:
                # The facade's own time, plus what receiving, decoding, scheduling and answering a call costs the
                # loop (measured: ~0.5 ms a call under load), which no timer around the call sees.
                self.budget.charge(max(0.0, time.perf_counter() - started - sum(waited)) + CALL_OVERHEAD_S)
            self.calls += 1
            await send({"id": call_id, "ok": result})
        except FacadeError as exc:
            await send({"id": call_id, "error": error_to_wire(exc)})
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise
        except Exception as exc:  # the RPC boundary: one failed call is reported, the engine goes on
            log.exception("control socket: %s failed", name)
            await send({"id": call_id, "error": error_to_wire(exc)})

    async def _invoke(
        self, name: str, args: dict[str, Any], call_id: object, send: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> object:
        facade = self.facade
        if name == "diagnose":

            async def progress(done: float, total: float, note: str) -> None:
                await send({"id": call_id, "progress": [done, total, note]})

            return (await facade.diagnose(progress)).model_dump(mode="json")
        if name == "record_event":
            await facade.record_event(args["kind"], args["source"], args["payload"])
            return None
        result = await getattr(facade, name)(**args)
        if isinstance(result, list):
            return [item.model_dump(mode="json") for item in result]
        return result.model_dump(mode="json")


def _same_user(stream: SocketStream) -> bool:
    """Whether the peer runs as this user, where the system says (Linux: SO_PEERCRED); else the socket file's
    owner-only mode is the guard."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if peercred is None or raw is None:
        return True
    import struct

    try:
        _pid, uid, _gid = struct.unpack("3i", raw.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i")))
    except OSError:
        return False
    return bool(uid == os.getuid())
