"""The single background writer: batching, flush durability, error reporting, draining on stop."""

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderType, TradeId
from engine.persistence import DuplicateRecord, FlushTimeout, SchemaError, Store, StoreWriter, WriterClosed

WAIT = 10  # seconds: generous bound on every wait, never reached when things work


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "engine.sqlite"


@pytest.fixture
def writer(db_path: Path) -> Iterator[StoreWriter]:
    w = StoreWriter(db_path, max_batch=100, flush_timeout=WAIT)
    w.start()
    yield w
    if w.running:
        w.stop()


def _fill(i: int) -> Fill:
    return Fill(
        trade_id=TradeId(f"T{i}"),
        client_id=ClientOrderId(f"C{i // 3}"),
        pair="XBT/USD",
        side=OrderSide.BUY,
        qty=Decimal("0.00000001"),
        price=Decimal("65432.1"),
        fee=Decimal("0.0001"),
        fee_asset="USD",
        ts_ns=i,
    )


def _add(fill: Fill) -> Callable[[Store], None]:
    return lambda store: store.add_fill(fill)


def _read(path: Path) -> Store:
    return Store.open_readonly(path)


@pytest.mark.anyio
async def test_many_submits_then_flush_are_all_committed(writer: StoreWriter, db_path: Path) -> None:
    fills = [_fill(i) for i in range(1000)]
    for fill in fills:
        writer.submit(_add(fill))
    with anyio.fail_after(WAIT):
        await writer.flush()
    with _read(db_path) as reader:
        assert reader.load_fills() == fills
    stats = writer.stats
    assert stats.ops_written == 1000
    assert stats.ops_failed == 0
    assert stats.queue_depth == 0
    assert stats.batches >= 10  # max_batch=100
    assert writer.last_error is None


@pytest.mark.anyio
async def test_flush_makes_an_order_durable_before_it_is_sent(writer: StoreWriter, db_path: Path) -> None:
    order = Order(ClientOrderId("c1"), "XBT/USD", OrderSide.SELL, OrderType.LIMIT, Decimal(1), Decimal(2), 1)
    writer.submit(lambda s: s.upsert_order(order))
    with anyio.fail_after(WAIT):
        await writer.flush()
    with _read(db_path) as reader:  # another connection sees it: it is committed
        assert reader.get_order("c1") == order


@pytest.mark.anyio
async def test_a_failed_write_surfaces_on_the_next_flush_only(writer: StoreWriter, db_path: Path) -> None:
    writer.submit(_add(_fill(1)))
    writer.submit(_add(_fill(1)))  # duplicate trade id
    writer.submit(_add(_fill(2)))
    with anyio.fail_after(WAIT), pytest.raises(DuplicateRecord):
        await writer.flush()
    assert isinstance(writer.last_error, DuplicateRecord)
    assert writer.stats.ops_failed == 1
    with anyio.fail_after(WAIT):
        await writer.flush()  # reported once; the writer thread is still alive
    writer.submit(_add(_fill(3)))
    with anyio.fail_after(WAIT):
        await writer.flush()
    with _read(db_path) as reader:
        assert [f.trade_id for f in reader.load_fills()] == ["T1", "T2", "T3"]


@pytest.mark.anyio
async def test_a_failing_op_is_rolled_back_alone(writer: StoreWriter, db_path: Path) -> None:
    def half_then_fail(store: Store) -> None:
        store.set_kv("half", True)
        raise ValueError("boom")

    writer.submit(lambda s: s.set_kv("before", 1))
    writer.submit(half_then_fail)
    writer.submit(lambda s: s.set_kv("after", 2))
    with anyio.fail_after(WAIT), pytest.raises(ValueError, match="boom"):
        await writer.flush()
    with _read(db_path) as reader:
        assert reader.load_kv() == {"before": 1, "after": 2}


@pytest.mark.anyio
async def test_call_returns_results_and_raises_its_own_errors(writer: StoreWriter) -> None:
    with anyio.fail_after(WAIT):
        v1 = await writer.call(lambda s: s.save_strategy_params("sma", {"fast": 10}, True, 1, "config"))
        v2 = await writer.call(lambda s: s.save_strategy_params("sma", {"fast": 11}, True, 2, "mcp:test"))
        assert (v1, v2) == (1, 2)
        writer.submit(_add(_fill(1)))
        with pytest.raises(DuplicateRecord):
            await writer.call(lambda s: s.add_fill(_fill(1)))
        await writer.flush()  # the call's error was already delivered: not reported twice
        assert await writer.call(lambda s: s.count_fills()) == 1


def test_stop_drains_the_queue_and_closes(db_path: Path) -> None:
    writer = StoreWriter(db_path, max_batch=50, flush_timeout=WAIT)
    writer.start()
    for i in range(500):
        writer.submit(_add(_fill(i)))
    writer.stop()
    assert not writer.running
    with pytest.raises(WriterClosed):
        writer.submit(_add(_fill(999)))
    with pytest.raises(WriterClosed):
        writer.flush_sync()
    with _read(db_path) as reader:
        assert reader.count_fills() == 500


def test_stop_reports_an_error_no_flush_has_seen(db_path: Path) -> None:
    writer = StoreWriter(db_path, flush_timeout=WAIT)
    writer.start()
    writer.submit(_add(_fill(1)))
    writer.submit(_add(_fill(1)))
    with pytest.raises(DuplicateRecord):
        writer.stop()
    assert not writer.running
    with _read(db_path) as reader:
        assert reader.count_fills() == 1


def test_flush_sync_and_in_memory_store() -> None:
    with StoreWriter(None, flush_timeout=WAIT) as writer:
        writer.submit(lambda s: s.append_equity(1, Decimal("1E-8")))
        writer.flush_sync()
        assert writer.call_sync(lambda s: s.load_equity()) == [(1, Decimal("0.00000001"))]


@pytest.mark.anyio
async def test_flush_times_out_when_the_writer_is_stuck(writer: StoreWriter) -> None:
    release = threading.Event()
    writer.submit(lambda _store: release.wait(WAIT))
    try:
        with anyio.fail_after(WAIT), pytest.raises(FlushTimeout):
            await writer.flush(timeout=0.05)
    finally:
        release.set()
    with anyio.fail_after(WAIT):
        await writer.flush()
    assert writer.stats.ops_written == 1


def test_start_raises_when_the_store_cannot_open(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    writer = StoreWriter(junk, flush_timeout=WAIT)
    with pytest.raises(SchemaError):
        writer.start()
    assert not writer.running
    with pytest.raises(WriterClosed):
        writer.submit(_add(_fill(1)))


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names the synced files through /proc (Linux)")
async def test_a_synced_flush_puts_the_log_on_disk_and_an_ordinary_commit_does_not(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A power loss cannot be staged in a test; what can be seen is which files reach fsync, and when. os.fsync is
    # replaced by a recorder (then called for real) because its effect is invisible without pulling the plug.
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    writer = StoreWriter(db_path, flush_timeout=WAIT, sync_flushes=True)
    writer.start()
    try:
        writer.submit(lambda store: store.set_kv("a", 1))
        with anyio.fail_after(WAIT):
            await writer.flush(sync=False)  # committed: safe from a crash of the process, not yet from power loss
        assert synced == []
        writer.submit(lambda store: store.set_kv("b", 2))
        with anyio.fail_after(WAIT):
            await writer.flush()  # sync_flushes: this one waits for the disk
        assert synced[0] == f"{db_path}-wal"
        assert synced[1:] == [str(db_path.parent)]  # the folder once, so the log file cannot vanish
        with anyio.fail_after(WAIT):
            await writer.flush()
        assert synced[2:] == [f"{db_path}-wal"]
    finally:
        writer.stop()
