"""Work run off the engine: in a killable worker process, bounded in time, one of a kind at a time, with progress.

The facade's research calls (``backtest``, ``optimize``, the what-if of a tuning preview) all run here: a function
of plain, picklable arguments runs in a worker process (``anyio.to_process``, ``cancellable=True``), never on the
live engine's event loop or in its interpreter. When the caller is cancelled (an MCP cancellation, a client that
went away) or the time is up, the worker process is killed, so nothing it was doing goes on; it writes nothing the
caller did not ask for, so nothing is left half-written (a caller that saves a result saves it after the worker
answered, whole).

Progress: with ``progress``, the function is called with a :class:`Reporter` (keyword ``report``) that sends
``(done, total, message)`` back over a Unix-domain socket of its own (a temporary folder, owner-only); every
report sent before the function returned reaches ``progress`` before the answer does. Where the platform has no
Unix-domain sockets the function gets a silent reporter.

Errors: :class:`~engine.errors.NotAllowed` (another run of the kind is on its way, or the worker died before
answering); :class:`~engine.errors.InvalidRequest` (over its time: the worker was killed); whatever the function
raised otherwise (pickled back).
"""

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from engine.errors import InvalidRequest, NotAllowed

__all__ = ["ProgressFn", "Reporter", "run_in_worker"]

T = TypeVar("T")
ProgressFn = Callable[[float, float, str], Awaitable[None]]
_LINE_MAX = 4096
_DRAIN_S = 5.0
_TURNS: dict[str, threading.Lock] = {}
_TURNS_LOCK = threading.Lock()


class Reporter:
    """The worker's end of the progress channel (picklable: it holds the socket's path, and connects on use)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._socket: socket.socket | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._socket = None

    def open(self) -> None:
        """Connect to the caller (at once, so that the caller hears the end of a run that reported nothing)."""
        if self.path is not None and self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socket.connect(self.path)

    def __call__(self, done: float, total: float, message: str) -> None:
        """Send one report (nothing when there is no channel)."""
        if self.path is None:
            return
        self.open()
        assert self._socket is not None
        line = json.dumps([done, total, message[:1000]]).encode() + b"\n"
        self._socket.sendall(line)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _reporting(fn: Callable[..., T], args: tuple[Any, ...], reporter: Reporter) -> T:
    """In the worker: ``fn(*args, report=reporter)``, the channel closed when it returns (the caller's cue that
    every report has been sent)."""
    try:
        reporter.open()
        return fn(*args, report=reporter)
    finally:
        reporter.close()


def _turn(kind: str) -> threading.Lock:
    with _TURNS_LOCK:
        return _TURNS.setdefault(kind, threading.Lock())


@asynccontextmanager
async def _channel(progress: ProgressFn) -> AsyncIterator[tuple[Reporter, anyio.Event]]:
    """A listening socket relaying reports to ``progress``; the event is set once the worker closed its end."""
    if not hasattr(socket, "AF_UNIX"):
        closed = anyio.Event()
        closed.set()
        yield Reporter(None), closed
        return
    folder = Path(tempfile.mkdtemp(prefix="trading-mcp-w-"))  # owner-only (0700)
    path = folder / "p.sock"
    closed = anyio.Event()
    try:
        listener = await anyio.create_unix_listener(path)

        async def relay() -> None:
            try:
                async with await listener.accept() as stream:
                    receive = BufferedByteReceiveStream(stream)
                    while True:
                        try:
                            line = await receive.receive_until(b"\n", _LINE_MAX)
                        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                            return
                        done, total, message = json.loads(line)
                        await progress(float(done), float(total), str(message))
            finally:
                closed.set()

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(relay)
            try:
                yield Reporter(str(path)), closed
            finally:
                tg.cancel_scope.cancel()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def run_in_worker(
    fn: Callable[..., T],
    *args: Any,
    kind: str,
    timeout_s: float,
    too_long: str,
    progress: ProgressFn | None = None,
) -> T:
    """``fn(*args)`` in a killable worker process within ``timeout_s``, one run of ``kind`` at a time (see the
    module docstring); with ``progress``, ``fn(*args, report=Reporter)``.

    Raises:
        NotAllowed: another run of ``kind`` is on its way, or the worker process died before answering.
        InvalidRequest: the run took longer than ``timeout_s`` (its worker was killed; ``too_long`` says what to
            ask instead).
    """
    turn = _turn(kind)
    if not turn.acquire(blocking=False):
        raise NotAllowed(f"another {kind} is running; ask again when it has finished")
    from anyio import to_process

    try:
        with anyio.fail_after(timeout_s):
            if progress is None:
                return await to_process.run_sync(partial(fn, *args), cancellable=True)
            failed: Exception | None = None
            async with _channel(progress) as (reporter, closed):
                try:
                    result = await to_process.run_sync(partial(_reporting, fn, args, reporter), cancellable=True)
                except Exception as exc:  # raised as is once the channel is closed, not inside its task group's
                    failed = exc
                else:
                    with anyio.move_on_after(_DRAIN_S):
                        await closed.wait()  # the reports sent before the answer reach the caller before it
            if failed is not None:
                raise failed
            return result
    except TimeoutError:
        raise InvalidRequest(f"the {kind} did not finish within {timeout_s:g} s and was stopped; {too_long}") from None
    except anyio.BrokenWorkerProcess:
        raise NotAllowed(f"the {kind}'s worker process failed before answering; nothing was run") from None
    finally:
        turn.release()
