"""Paper trading on Kraken's (fake) public feed: the engine of ``run --market kraken`` on loopback, with the
real one-minute capture played as Kraken's ohlc channel; strategies trade and the paper venue fills."""

import json
from collections import deque
from collections.abc import AsyncGenerator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Inbox

from engine.domain.market_data import Candle, MarketEvent
from engine.exchanges.kraken.market_feed import KrakenMarketSource
from engine.exchanges.paper import PaperExchange
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.live import build_kraken_engine

pytestmark = pytest.mark.anyio
D = Decimal
OHLC = Path(__file__).resolve().parents[3] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
HISTORY = 600


def capture_rows() -> list[list[Any]]:
    rows: list[list[Any]] = json.loads(OHLC.read_text(), parse_float=D)["result"]["XBTUSDT"]
    return rows


def publish(fake: FakeKraken, row: list[Any]) -> None:
    begin, o, h, low, c, vwap, volume, count = row
    fake.candle("XBTUSD", int(begin) * 10**9, c, open=o, high=h, low=low, vwap=vwap, volume=volume, trades=count)


def paper_config(fake: FakeKraken, **extra: Any) -> Config:
    return config_from_mapping(
        {
            "market": {"source": "kraken", "pair": "XBTUSD"},
            "paper": {"starting_balances": {"USD": "10000"}},
            "strategies": [
                {
                    "name": "fast_ema",
                    "kind": "ema_cross",
                    "pair": "XBTUSD",
                    "params": {"fast": 3, "slow": 8},
                    "order_quote_amount": "500",
                },
            ],
            "kraken": {
                "rest_url": fake.rest_url,
                "ws_public_url": fake.ws_public_url,
                "ws_private_url": fake.ws_private_url,
            },
            **extra,
        }
    )


def ohlc_subscribed(fake: FakeKraken) -> bool:
    return any(s.ohlc for s in fake.sessions)


async def run_until_done(engine: Engine, fake: FakeKraken, rows: list[list[Any]], *, fault: str = "") -> None:
    source = engine.source
    assert isinstance(source, KrakenMarketSource)
    with anyio.fail_after(30):
        async with engine.serve():
            await fake.wait_until(lambda: ohlc_subscribed(fake))
            half = len(rows) // 2
            for row in rows[:half]:
                publish(fake, row)
            if fault == "drop":
                fake.drop_ws(private=False)
                await fake.wait_until(lambda: fake.connections == 2 and ohlc_subscribed(fake))
            if fault == "checksum":
                fake.faults.break_checksum = 1
                fake.set_book("XBTUSD", [("105000.0", "2")], [("105000.1", "2")])
            for row in rows[half:]:
                publish(fake, row)
            await engine.done.wait()
        await source.aclose()


async def test_paper_trading_on_the_fake_public_feed(tmp_path: Path) -> None:
    rows = capture_rows()
    async with FakeKraken() as fake:
        fake.set_book("XBTUSD", [("105900.0", "2"), ("105899.9", "3")], [("105900.1", "2"), ("105900.2", "3")])
        fake.market.candles[("XBTUSD", 1)] = []
        for row in rows[:HISTORY]:
            publish(fake, row)
        # ticker snapshot + book snapshot + the 599 closed candles of the snapshot + one per later candle
        expected = 1 + 1 + (HISTORY - 1) + (len(rows) - HISTORY)
        engine = build_kraken_engine(
            paper_config(fake), tmp_path / "paper.db", RunOptions(max_events=expected), ws_settings=FAST_WS
        )
        await run_until_done(engine, fake, rows[HISTORY:])
    assert isinstance(engine.exchange, PaperExchange) and not engine.exchange.is_live
    assert engine.state.events_this_run == expected
    assert engine.source.description.startswith("kraken live feed (BTC/USD")
    slot = engine.slots[0]
    assert slot.signals > 0 and slot.errors == 0
    fills = [o for o in engine.oms.orders.values() if o.filled_qty > 0]
    assert fills, "strategies traded and the paper venue filled"
    assert engine.portfolio.balances.total("USD") != D(10000)
    assert not fake.market.orders  # nothing reached the (fake) exchange


class Watched:
    """A market source that reports each batch once the engine has processed it (it asked for the next)."""

    def __init__(self, inner: KrakenMarketSource) -> None:
        self.inner = inner
        self.batches: Inbox[int] = Inbox()
        self.description = inner.description
        self.identity = inner.identity
        self.total = None
        self.replayable = False

    def history(self, stop: int) -> Iterator[MarketEvent]:
        return self.inner.history(stop)

    async def stream(self, start: int) -> AsyncGenerator[Sequence[MarketEvent]]:
        async for batch in self.inner.stream(start):
            yield batch
            self.batches.append(len(batch))


@pytest.mark.parametrize("fault", ["drop", "checksum"])
async def test_paper_trading_survives_a_dropped_feed_and_a_broken_book_without_losing_candles(
    tmp_path: Path, fault: str
) -> None:
    rows = capture_rows()[:200]
    async with FakeKraken() as fake:
        fake.set_book("XBTUSD", [("105900.0", "2")], [("105900.1", "2")])
        for row in rows[:50]:
            publish(fake, row)
        config = paper_config(fake)
        # The capture is from 2025: the source's clock stands at the last row's start, so that candle stays open
        # (by the wall clock it would be long due and closed on time).
        inner = KrakenMarketSource(
            fake.ws_public_url,
            {"BTC/USD": example_instruments()["BTC/USD"]},
            settings=FAST_WS,
            clock_ns=lambda: int(rows[-1][0]) * 10**9,
        )
        source = Watched(inner)
        engine = Engine(config, tmp_path / "paper.db", source, live_clock=True)
        history: deque[Candle] | None = None  # the strategy's candles, once the engine has started
        with anyio.fail_after(30):
            async with engine.serve():
                await fake.wait_until(lambda: ohlc_subscribed(fake))
                for row in rows[50:120]:
                    publish(fake, row)
                if fault == "drop":
                    fake.drop_ws(private=False)
                    await fake.wait_until(lambda: fake.connections == 2 and ohlc_subscribed(fake))
                else:
                    fake.faults.break_checksum = 1
                    fake.set_book("XBTUSD", [("105000.0", "2")], [("105000.1", "2")])
                for row in rows[120:]:
                    publish(fake, row)
                history = engine.slots[0].history
                await source.batches.wait_until(lambda _: len(history) == len(rows) - 1)
            await inner.aclose()
    assert history is not None
    assert [c.ts_ns for c in history] == [int(r[0]) * 10**9 for r in rows[:-1]]  # each closed candle once
    if fault == "drop":
        assert inner.feed.link.connections == 2
    else:
        assert inner.feed.checksum_failures == 1 and inner.feed.resyncs == 1


async def test_the_live_candle_grace_comes_from_the_config(tmp_path: Path) -> None:
    def source_grace(kraken: dict[str, Any]) -> int:
        config = config_from_mapping({"market": {"source": "kraken", "pair": "XBTUSD"}, "kraken": kraken})
        engine = build_kraken_engine(config, tmp_path / "grace.db", RunOptions(), ws_settings=FAST_WS)
        assert isinstance(engine.source, KrakenMarketSource)
        return engine.source.candle_closer.grace_ns

    assert source_grace({}) == 2 * 10**9
    assert source_grace({"candle_grace_s": 0.5}) == 5 * 10**8
    with pytest.raises(ValueError, match="candle_grace_s"):
        config_from_mapping({"kraken": {"candle_grace_s": -1}})
