"""The reader: reads of a file store on a connection and a thread of their own.

Reads used to run on the writer's thread, in its queue: while clients read hard, an order intent waited behind
their queries for its commit (3 s once, behind 2,460 reads). Here a read never queues behind writes and a write
never queues behind reads: SQLite in WAL mode lets this read-only connection read a committed snapshot while the
writer writes. What the engine submitted but the writer has not committed yet is not in that snapshot; callers
that need their own writes first wait for the writer (:meth:`engine.runtime.app.Engine.read` does).

An in-memory store has one connection only: it is read through the writer (:meth:`StoreWriter.call`).
"""

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from engine.persistence.errors import FlushTimeout, WriterClosed
from engine.persistence.handoff import wait_for_thread
from engine.persistence.store import Store

__all__ = ["StoreReader"]

T = TypeVar("T")
_Read = tuple[Callable[[Store], Any], Future[Any]]


class StoreReader:
    """One thread with a read-only connection to ``path``; :meth:`start` it after the store exists."""

    def __init__(self, path: Path, *, timeout: float = 30.0, name: str = "store-reader") -> None:
        self.path = path
        self._timeout = timeout
        self._name = name
        self._queue: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.reads = 0

    def start(self) -> None:
        """Open the connection on the reader's thread; raises what opening raised."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise FlushTimeout(f"store reader did not open within {self._timeout}s")
        if self._open_error is not None:
            raise self._open_error

    def stop(self) -> None:
        """Finish the queued reads, close the connection and join the thread."""
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        self._queue.put(None)
        thread.join(self._timeout)

    async def call(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` on the reader's connection (a committed snapshot), without blocking the event loop.

        Raises:
            WriterClosed: the reader is not running.
            FlushTimeout: no answer in time.
        """
        if self._thread is None:
            raise WriterClosed("store reader is not running")
        future: Future[Any] = Future()
        self._queue.put((fn, future))
        if not future.done():
            try:
                await wait_for_thread(future, self._timeout)
            except TimeoutError as exc:
                raise FlushTimeout(f"store reader did not answer within {self._timeout}s") from exc
        result: T = future.result()
        return result

    def _run(self) -> None:
        try:
            store = Store.open_readonly(self.path)
        except BaseException as exc:
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while (item := self._queue.get()) is not None:
                fn, future = item
                try:
                    # One snapshot per read: a read that spans statements sees one consistent state.
                    with store.db.conn:
                        store.db.conn.execute("BEGIN")
                        future.set_result(fn(store))
                except BaseException as exc:
                    future.set_exception(exc)
                self.reads += 1
        finally:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].set_exception(WriterClosed("store reader stopped"))
            store.close()
