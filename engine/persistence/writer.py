"""The single writer: one thread owns the writable :class:`Store`; the event loop only enqueues.

``submit`` is a lock-guarded ``SimpleQueue.put`` (cheap enough for the backtest's fill hot path). The thread
drains the queue into batches, one transaction each, committed when the queue is momentarily empty, after
``max_batch`` operations, or at a flush/call marker. Every operation runs inside its own savepoint, so a
failing one is rolled back alone and the rest of its batch still commits (a bulk write that raises
:class:`~engine.persistence.bulk.PartialWrite` keeps the rows it wrote). An operation submitted as ``atomic`` is
all-or-nothing by itself (one statement, or its own savepoint) and runs without one: while a backtest keeps the
GIL busy, every statement costs this thread a wait of up to the switch interval to get the GIL back.

Staging: a producer that would rather hand over its writes in bulk (the journal, in a backtest) registers a
``take`` function with :meth:`StoreWriter.set_stager`. Before anything else is queued (a submit, a flush, a
call, the stop), ``take()`` is asked for the staged writes as one operation, which goes first: staged writes
keep their place among all writes, and every flush or read sees them.

Errors never die silently: the first failure since the last flush is re-raised by the next :meth:`flush` (and
by :meth:`stop` if no flush reported it); the latest stays readable as :attr:`StoreWriter.last_error`.

Durability before an exchange call::

    writer.submit(lambda s: s.upsert_order(order))
    await writer.flush()          # the intent is committed once this returns
    await venue.add_order(...)
"""

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio.to_thread

from engine import faults
from engine.persistence.bulk import PartialWrite
from engine.persistence.errors import FlushTimeout, StoreError, WriterClosed, WriterError
from engine.persistence.handoff import wait_for_thread
from engine.persistence.store import Store
from engine.redaction import redacted_logger

__all__ = ["StoreWriter", "WriterStats"]

T = TypeVar("T")
Op = Callable[[Store], object]

_log = redacted_logger(__name__)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot for diagnostics."""

    ops_written: int
    ops_failed: int
    batches: int
    queue_depth: int
    running: bool


class _Call:
    """A queued operation whose outcome someone awaits; ``fn=None`` is a plain flush marker. ``sync``: the
    commit must also survive a power loss before the waiter hears back (see :meth:`Store.sync`)."""

    __slots__ = ("fn", "future", "report", "sync")

    def __init__(self, fn: Callable[[Store], Any] | None, *, sync: bool = False, report: bool = True) -> None:
        self.fn = fn
        self.sync = sync
        self.report = report  # a flush reports (and clears) the first write error since the last; a barrier not
        self.future: Future[Any] = Future()


class _Atomic:
    """An operation that is atomic by itself (a single statement, or one that keeps its own savepoint): it runs
    without the per-operation savepoint, two statements (and two GIL hand-overs) fewer."""

    __slots__ = ("fn",)

    def __init__(self, fn: Op) -> None:
        self.fn = fn


_STOP = object()


class StoreWriter:
    """Owns the writable store on a dedicated thread. Call :meth:`start` first and :meth:`stop` at the end.

    The thread is a daemon so that a forgotten ``stop`` cannot hang interpreter exit; whatever is still queued
    then is lost (committed batches are safe), so shutdown paths must call :meth:`stop` (or :meth:`aclose`).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        max_batch: int = 2000,
        flush_timeout: float = 30.0,
        name: str = "store-writer",
        sync_flushes: bool = False,
    ) -> None:
        """Configure the writer; nothing runs until :meth:`start`.

        Args:
            path: the database file (None: in-memory, visible only through :meth:`call`).
            max_batch: operations per transaction at most.
            flush_timeout: default bound, in seconds, on :meth:`flush`, :meth:`call`, :meth:`stop`.
            name: the thread's name.
            sync_flushes: a :meth:`flush` also makes what it confirms survive a power loss of the machine, not
                only the death of the process (one synced commit per flush, ~0.3 ms here; commits nobody waits
                for are not synced, so a replay pays nothing for them).
        """
        self.sync_flushes = sync_flushes
        self.path = path
        self._max_batch = max_batch
        self._timeout = flush_timeout
        self._name = name
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._pending_error: BaseException | None = None
        self._final_error: BaseException | None = None
        self.last_error: BaseException | None = None
        self._ops_written = 0
        self._ops_failed = 0
        self._batches = 0
        self._stager: Callable[[], Op | None] | None = None
        self._stager_atomic = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread and open (and migrate) the store in it; raises what opening raised."""
        if self._thread is not None:
            raise WriterError("writer already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise FlushTimeout(f"store did not open within {self._timeout}s")
        if self._open_error is not None:
            raise self._open_error

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting work, write everything queued, commit, close the store and join the thread.

        Raises:
            Exception: the first write error nobody has seen yet (after the store is closed).
            FlushTimeout: the thread did not finish in time.
        """
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            if self._accepting:
                self._put_staged()
                self._accepting = False
                self._queue.put(_STOP)
        thread.join(self._timeout if timeout is None else timeout)
        if thread.is_alive():
            raise FlushTimeout("writer thread did not stop in time")
        error, self._final_error = self._final_error, None
        if error is not None:
            raise error

    async def aclose(self) -> None:
        """:meth:`stop` without blocking the event loop."""
        await anyio.to_thread.run_sync(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._accepting

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            ops_written=self._ops_written,
            ops_failed=self._ops_failed,
            batches=self._batches,
            queue_depth=self._queue.qsize(),
            running=self._accepting,
        )

    # -- enqueueing ------------------------------------------------------------------------------------

    def set_stager(self, take: Callable[[], Op | None] | None, *, atomic: bool = False) -> None:
        """Register the source of staged writes (None removes it); see the module's docstring.

        ``take`` runs on the thread that submits, flushes or stops, under the writer's lock: it must be quick
        when nothing is staged, must not call back into the writer, and must only be used where the staged
        objects cannot change meanwhile (their owner's thread, or when that thread is waiting for the writer).
        ``atomic``: the operations it returns are atomic by themselves (see :meth:`submit`).
        """
        with self._lock:
            self._stager = take
            self._stager_atomic = atomic

    def _put_staged(self) -> None:
        # Called with the lock held.
        take = self._stager
        if take is None:
            return
        try:
            staged = take()
        except Exception as exc:
            # Reported like any failed write: by the next flush, not by whoever happened to submit.
            failure = exc

            def staged(store: Store) -> None:
                raise failure

        if staged is not None:
            self._queue.put(_Atomic(staged) if self._stager_atomic else staged)

    def submit(self, fn: Op, *, atomic: bool = False) -> None:
        """Queue ``fn(store)`` to run on the writer thread; returns at once.

        ``atomic``: ``fn`` is all-or-nothing by itself (one SQL statement, or its own savepoint), so the writer
        need not wrap it in one. Its failure is still reported by the next :meth:`flush`.

        Raises:
            WriterClosed: the writer is not running.
        """
        with self._lock:
            if not self._accepting:
                raise WriterClosed("store writer is not running")
            self._put_staged()
            self._queue.put(_Atomic(fn) if atomic else fn)

    def _enqueue_call(
        self, fn: Callable[[Store], Any] | None, *, sync: bool = False, report: bool = True
    ) -> Future[Any]:
        if threading.current_thread() is self._thread:
            raise WriterError("cannot wait for the writer from its own thread")
        call = _Call(fn, sync=sync, report=report)
        with self._lock:
            if not self._accepting:
                raise WriterClosed("store writer is not running")
            self._put_staged()
            self._queue.put(call)
        return call.future

    async def _wait(self, future: Future[Any], timeout: float | None) -> Any:
        if not future.done():
            limit = self._timeout if timeout is None else timeout
            try:
                await wait_for_thread(future, limit)
            except TimeoutError as exc:
                raise FlushTimeout(f"store writer did not answer within {limit}s") from exc
        return future.result()

    async def flush(self, timeout: float | None = None, *, sync: bool | None = None) -> None:
        """Wait until everything submitted before this call is committed (and synced to disk when ``sync``,
        by default ``sync_flushes``).

        Raises:
            Exception: the first write error since the previous flush (those writes were rolled back).
            FlushTimeout: no answer within ``timeout`` (default: the writer's ``flush_timeout``).
            WriterClosed: the writer is not running.
        """
        await self._wait(self._enqueue_call(None, sync=self.sync_flushes if sync is None else sync), timeout)

    async def barrier(self, timeout: float | None = None) -> None:
        """Wait until everything submitted before this call is committed, without taking the report of a failed
        write (that one stays for the next :meth:`flush`, the trading path's): for a reader on another
        connection that must see the engine's own writes.

        Raises:
            FlushTimeout: no answer within ``timeout``.
            WriterClosed: the writer is not running.
        """
        await self._wait(self._enqueue_call(None, report=False), timeout)

    def flush_sync(self, timeout: float | None = None) -> None:
        """:meth:`flush` for threads outside the event loop (shutdown paths)."""
        future = self._enqueue_call(None, sync=self.sync_flushes)
        _result(future, self._timeout if timeout is None else timeout)

    async def call(self, fn: Callable[[Store], T], timeout: float | None = None) -> T:
        """Run ``fn(store)`` in order with the submitted writes and return its result once committed.

        Use it for writes whose result is needed (``save_strategy_params`` returns the version) and for reads
        of an in-memory store. ``fn``'s own exception is raised here, not by the next flush.
        """
        result: T = await self._wait(self._enqueue_call(fn), timeout)
        return result

    def call_sync(self, fn: Callable[[Store], T], timeout: float | None = None) -> T:
        result: T = _result(self._enqueue_call(fn), self._timeout if timeout is None else timeout)
        return result

    # -- the writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            store = Store.open(self.path)
        except BaseException as exc:
            self._open_error = exc
            self._ready.set()
            return
        with self._lock:
            self._accepting = True
        self._ready.set()
        try:
            while self._write_batch(store, self._queue.get()):
                pass
        except BaseException as exc:
            _log.exception("store writer died")
            self._record(exc)
        finally:
            with self._lock:
                self._accepting = False
            self._fail_leftovers()
            self._final_error = self._pending_error
            self._pending_error = None
            store.close()

    def _write_batch(self, store: Store, item: object) -> bool:
        """Run ``item`` and whatever else is queued in one transaction; False once the stop marker is seen."""
        conn = store.db.conn
        conn.execute("BEGIN")
        waiter: tuple[_Call, Any, BaseException | None] | None = None
        ran = ok = 0
        keep_running = True
        try:
            while True:
                if item is _STOP:
                    keep_running = False
                    break
                if isinstance(item, _Call):
                    if item.fn is None:
                        waiter = (item, None, self._pending_error if item.report else None)
                        if item.report:
                            self._pending_error = None
                    else:
                        result, error = self._run_op(store, item.fn, report=False)
                        ok += error is None
                        waiter = (item, result, error)
                    break  # commit now: someone is waiting
                if type(item) is _Atomic:
                    ok += self._run_op(store, item.fn, report=True, savepoint=False)[1] is None
                else:
                    assert callable(item)
                    ok += self._run_op(store, item, report=True)[1] is None
                ran += 1
                if ran >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            conn.execute("COMMIT")
            faults.hit("commit")
            if waiter is not None and waiter[0].sync and store.path is not None:
                store.sync()
        except BaseException as exc:  # a failed COMMIT, or the thread torn down mid-batch
            store.db.rollback()
            self._ops_failed += ok
            if waiter is not None and waiter[0].fn is None:
                self.last_error = exc  # the waiting flush reports it
            else:
                self._record(exc)
            if waiter is not None:
                waiter[0].future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return keep_running
        self._ops_written += ok
        self._batches += 1
        if waiter is not None:
            call, value, failure = waiter
            if failure is None:
                call.future.set_result(value)
            else:
                call.future.set_exception(failure)
        return keep_running

    def _run_op(
        self, store: Store, fn: Callable[[Store], Any], *, report: bool, savepoint: bool = True
    ) -> tuple[Any, Exception | None]:
        """Run one operation in its own savepoint (unless it is atomic by itself); ``report`` leaves its error
        for the next flush."""
        conn = store.db.conn
        if savepoint:
            conn.execute("SAVEPOINT op")
        try:
            result = fn(store)
        except PartialWrite as exc:
            # The rows it could write stay written; the refused ones are reported like a failed write.
            self._ops_failed += 1
            if savepoint:
                conn.execute("RELEASE op")
            if report:
                self._record(exc)
            else:
                self.last_error = exc
            return None, exc
        except Exception as exc:
            self._ops_failed += 1
            if conn.in_transaction:
                if savepoint:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
            else:
                # The failure ended the whole transaction: earlier writes of this batch are gone too.
                self._record(StoreError(f"write failed and aborted its batch: {exc!r}"))
                conn.execute("BEGIN")
            if report:
                self._record(exc)
            else:
                self.last_error = exc
            return None, exc
        if savepoint:
            conn.execute("RELEASE op")
        return result, None

    def _record(self, exc: BaseException) -> None:
        _log.error("store write failed: %r", exc)
        self.last_error = exc
        if self._pending_error is None:
            self._pending_error = exc

    def _fail_leftovers(self) -> None:
        # Only reached if the thread dies or stops with work still queued behind the stop marker.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call):
                item.future.set_exception(WriterClosed("store writer stopped before this ran"))
            elif item is not _STOP:
                self._record(WriterClosed("store writer stopped before a submitted write ran"))


def _result(future: Future[Any], timeout: float) -> Any:
    try:
        return future.result(timeout)
    except TimeoutError as exc:
        if future.done():
            raise
        raise FlushTimeout(f"store writer did not answer within {timeout}s") from exc
