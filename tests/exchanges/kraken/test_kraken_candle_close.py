"""Kraken candles close when their interval ends (plus a grace), not only when the next interval's update comes."""

from contextlib import aclosing
from decimal import Decimal

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Inbox
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.market_data import NS_PER_SECOND, Candle, MarketEvent, TradeTick
from engine.exchanges.kraken.market_feed import DEFAULT_CANDLE_GRACE_NS, CandleCloser, KrakenMarketSource

MINUTE = 60 * NS_PER_SECOND
GRACE = 2 * NS_PER_SECOND
BASE = 28_333_333 * MINUTE  # a minute boundary in November 2023


def candle(minute: int, close: str, *, pair: str = "XBTUSD", interval_s: int = 60) -> Candle:
    price = Decimal(close)
    return Candle(pair, BASE + minute * MINUTE, interval_s, price, price, price, price, Decimal(1))


def end(minute: int, interval_s: int = 60) -> int:
    return BASE + minute * MINUTE + interval_s * NS_PER_SECOND


# -- CandleCloser (pure) ------------------------------------------------------------------------------------


def test_the_default_grace_is_two_seconds() -> None:
    assert CandleCloser().grace_ns == DEFAULT_CANDLE_GRACE_NS == GRACE
    with pytest.raises(ValueError, match="negative"):
        CandleCloser(grace_ns=-1)


def test_a_running_candle_closes_at_its_end_plus_the_grace_and_not_before() -> None:
    closer = CandleCloser(GRACE)
    assert closer.next_due_ns() is None  # nothing running
    assert closer.feed(candle(0, "10")) == []
    assert closer.feed(candle(0, "11")) == []  # the running candle changes
    assert closer.next_due_ns() == end(0) + GRACE
    assert closer.due(end(0)) == []  # the interval ended, but Kraken may still send its last trade
    assert closer.due(end(0) + GRACE - 1) == []
    assert closer.due(end(0) + GRACE) == [candle(0, "11")]
    assert closer.closed_by_time == 1
    assert closer.next_due_ns() is None


def test_a_candle_closed_on_time_is_emitted_once() -> None:
    closer = CandleCloser(GRACE)
    closer.feed(candle(0, "10"))
    assert closer.due(end(0) + GRACE) == [candle(0, "10")]
    assert closer.due(end(0) + 10 * GRACE) == []
    assert closer.feed(candle(1, "12")) == []  # the next interval begins: the candle it would close is out already
    assert closer.late_updates == 0


def test_a_late_update_is_ignored_counted_and_leaves_the_next_candle_alone() -> None:
    closer = CandleCloser(GRACE)
    closer.feed(candle(0, "10"))
    assert closer.due(end(0) + GRACE) == [candle(0, "10")]
    assert closer.feed(candle(0, "10.5")) == []  # Kraken's last trade of minute 0, after the grace
    assert closer.late_updates == 1
    assert closer.next_due_ns() is None  # the late update did not become a running candle again
    assert closer.feed(candle(1, "12")) == []
    assert closer.feed(candle(0, "10.7")) == []  # even later, and out of order
    assert closer.late_updates == 2
    assert closer.feed(candle(1, "13")) == []
    assert closer.feed(candle(2, "14")) == [candle(1, "13")]  # minute 1 is whole and untouched
    assert closer.due(end(2) + GRACE) == [candle(2, "14")]


def test_a_late_update_before_the_next_interval_does_not_close_minute_one_early() -> None:
    closer = CandleCloser(GRACE)
    closer.feed(candle(0, "10"))
    closer.due(end(0) + GRACE)
    closer.feed(candle(0, "10.5"))  # late
    closer.feed(candle(1, "11"))
    assert closer.due(end(1) + GRACE - 1) == []
    assert closer.due(end(1) + GRACE) == [candle(1, "11")]


def test_pairs_and_intervals_close_on_their_own_ends() -> None:
    closer = CandleCloser(GRACE)
    xbt, eth = candle(0, "10"), candle(0, "1", pair="ETHXBT")
    xbt_5m = candle(0, "10", interval_s=300)
    for running in (xbt_5m, eth, xbt):
        assert closer.feed(running) == []
    assert closer.due(end(0) + GRACE) == [eth, xbt]  # both one-minute candles; the five-minute one runs on
    assert closer.next_due_ns() == end(0, 300) + GRACE
    assert closer.feed(candle(1, "11")) == []
    assert closer.due(end(0, 300) + GRACE) == [candle(1, "11"), xbt_5m]  # oldest end first


def test_the_snapshot_after_a_reconnect_repeats_nothing_and_counts_nothing_as_late() -> None:
    closer = CandleCloser(GRACE)
    for minute in (0, 1, 2):
        closer.feed(candle(minute, str(minute)), snapshot=minute == 0)
    assert closer.due(end(2) + GRACE) == [candle(2, "2")]  # minutes 0 and 1 closed by the next update
    # Reconnected: the snapshot repeats 0..2 and brings 3 and 4 (missed while away) and 5 (running).
    emitted = [c for m in range(6) for c in closer.feed(candle(m, str(m)), snapshot=True)]
    assert [c.ts_ns for c in emitted] == [candle(3, "0").ts_ns, candle(4, "0").ts_ns]
    assert closer.late_updates == 0
    assert closer.due(end(5) + GRACE) == [candle(5, "5")]


@given(
    st.lists(
        st.tuples(st.sampled_from(["feed", "snapshot", "due"]), st.integers(0, 6), st.integers(0, 3)),
        max_size=40,
    )
)
def test_any_sequence_emits_each_interval_at_most_once_in_order_and_never_early(
    steps: list[tuple[str, int, int]],
) -> None:
    closer = CandleCloser(GRACE)
    emitted: dict[str, list[int]] = {}
    now = BASE
    for kind, minute, pair in steps:
        name = f"P{pair % 2}"
        if kind == "due":
            now = max(now, BASE + minute * MINUTE + (pair - 1) * NS_PER_SECOND)  # the wall clock does not go back
            out = closer.due(now)
            assert all(c.close_ns + GRACE <= now for c in out)
        else:
            out = closer.feed(candle(minute, "1", pair=name), snapshot=kind == "snapshot")
        for c in out:
            emitted.setdefault(c.pair, []).append(c.ts_ns)
    for times in emitted.values():
        assert times == sorted(set(times))


# -- KrakenMarketSource against the fake Kraken -------------------------------------------------------------


class NsClock:
    """A wall clock in ns that moves only when the test says."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_the_source_passes_its_grace_to_the_closer() -> None:
    instruments = {"BTC/USD": example_instruments()["BTC/USD"]}
    source = KrakenMarketSource("ws://127.0.0.1:1/v2", instruments, candle_grace_s=0.5)
    assert source.candle_closer.grace_ns == NS_PER_SECOND // 2
    assert KrakenMarketSource("ws://127.0.0.1:1/v2", instruments).candle_closer.grace_ns == GRACE
    with pytest.raises(ValueError, match="candle_poll_s"):
        KrakenMarketSource("ws://127.0.0.1:1/v2", instruments, candle_poll_s=0)


def candles_in(batches: list[list[MarketEvent]]) -> list[Candle]:
    return [e for batch in batches for e in batch if isinstance(e, Candle)]


def trades_in(batches: list[list[MarketEvent]]) -> list[TradeTick]:
    return [e for batch in batches for e in batch if isinstance(e, TradeTick)]


@pytest.mark.anyio
async def test_the_source_yields_a_quiet_pairs_candle_once_its_interval_and_the_grace_are_over() -> None:
    clock = NsClock(BASE + 30 * NS_PER_SECOND)
    batches: Inbox[list[MarketEvent]] = Inbox()
    async with FakeKraken(clock_ns=clock) as fake:
        source = KrakenMarketSource(
            fake.ws_public_url,
            {"BTC/USD": example_instruments()["BTC/USD"]},
            channels=("trade", "ohlc"),
            settings=FAST_WS,
            clock_ns=clock,
            candle_poll_s=0.01,  # re-read the hand-moved clock often
        )

        async def consume() -> None:
            async with aclosing(source.stream(0)) as stream:
                async for batch in stream:
                    batches.append(list(batch))

        async def trade_seen(price: str) -> None:
            """Publish a public trade and wait until the source yielded it: everything before it was handled."""
            fake.public_trade("XBTUSD", price, "0.1")
            await batches.wait_until(lambda items: any(t.price == Decimal(price) for t in trades_in(items)))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await fake.wait_until(lambda: any(s.ohlc for s in fake.sessions))
                fake.candle("XBTUSD", BASE, "100", high="101", low="99", open="99.5", volume="2", trades=3)
                clock.now = end(0) + GRACE - 1
                await trade_seen("100.1")
                assert candles_in(batches.items) == []  # the update was handled, and the candle is not due yet

                clock.now = end(0) + GRACE  # no message for a later interval: only the clock moved
                await batches.wait_until(lambda items: len(candles_in(items)) == 1)
                [closed] = candles_in(batches.items)
                assert closed == Candle(
                    "BTC/USD", BASE, 60, Decimal("99.5"), Decimal(101), Decimal(99), Decimal(100), Decimal(2), 3
                )
                assert fake.market.candles[("XBTUSD", 1)][-1]["begin_ns"] == BASE  # nothing later was published

                fake.candle("XBTUSD", BASE, "100.4", high="101", low="99", open="99.5", volume="3", trades=4)
                await trade_seen("100.2")
                assert source.candle_closer.late_updates == 1
                assert len(candles_in(batches.items)) == 1  # the late update did not emit minute 0 again

                fake.candle("XBTUSD", BASE + MINUTE, "102")
                clock.now = end(1) + GRACE
                await batches.wait_until(lambda items: len(candles_in(items)) == 2)
                assert candles_in(batches.items)[1] == candle(1, "102", pair="BTC/USD")._replace(
                    volume=Decimal(1), trades=1
                )
                tg.cancel_scope.cancel()
    assert source.candle_closer.closed_by_time == 2
    assert source.feed.link.connections == 1
