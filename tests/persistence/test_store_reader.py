"""The reader: reads on a connection of their own never hold up a write (an order intent's commit), and with the
writer's barrier they see everything written before them."""

import threading
from pathlib import Path

import anyio
import pytest

from engine.persistence import Store, StoreReader, StoreWriter

pytestmark = pytest.mark.anyio
WAIT = 10


async def test_a_write_never_waits_behind_a_read(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    writer = StoreWriter(db, flush_timeout=WAIT, sync_flushes=True)
    writer.start()
    reader = StoreReader(db, timeout=WAIT)
    reader.start()
    try:
        reading, release = threading.Event(), threading.Event()

        def slow_read(store: Store) -> object:
            reading.set()
            release.wait(WAIT)  # a long query, holding its snapshot
            return store.get_kv("k")

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.call, slow_read)
            await anyio.to_thread.run_sync(reading.wait, WAIT)
            writer.submit(lambda store: store.set_kv("k", "intent"))
            with anyio.fail_after(WAIT):
                await writer.flush()  # committed and synced while the read still runs
            release.set()
        with anyio.fail_after(WAIT):
            assert await reader.call(lambda store: store.get_kv("k")) == "intent"
    finally:
        reader.stop()
        writer.stop()


async def test_after_the_barrier_a_read_sees_the_writes_before_it_and_errors_stay_for_the_flush(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.sqlite"
    writer = StoreWriter(db, flush_timeout=WAIT)
    writer.start()
    reader = StoreReader(db, timeout=WAIT)
    reader.start()
    try:
        gate = threading.Event()
        writer.submit(lambda store: gate.wait(WAIT))  # the writer is behind
        writer.submit(lambda store: store.set_kv("seen", 1))

        def boom(store: Store) -> None:
            raise RuntimeError("disk trouble")

        writer.submit(boom)
        assert await reader.call(lambda store: store.get_kv("seen")) is None  # not committed yet
        async with anyio.create_task_group() as tg:

            async def read_own_writes() -> None:
                await writer.barrier()
                assert await reader.call(lambda store: store.get_kv("seen")) == 1

            tg.start_soon(read_own_writes)
            gate.set()
        # The failed write was not reported to the reader: the next flush (the trading path's) hears it.
        with anyio.fail_after(WAIT), pytest.raises(RuntimeError, match="disk trouble"):
            await writer.flush()
    finally:
        reader.stop()
        writer.stop()
