"""A paper engine replaying several pairs scans the candles it has replayed so far, per pair, and nothing after."""

from decimal import Decimal

import anyio
import pytest

from engine.domain.market_data import Candle
from engine.exchanges.replay import ReplaySource
from engine.market import ATR
from engine.market.catalog_files import current_catalog
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.control import OFF_LOOP
from engine.runtime.sources import ReplayMarketSource

pytestmark = pytest.mark.anyio
MINUTE = 60


def walk(pair: str, start: Decimal, step: Decimal, count: int) -> list[Candle]:
    candles = []
    close = start
    for k in range(count):
        close += step if k % 3 else -step / 2
        candles.append(
            Candle(pair, k * MINUTE * 10**9, MINUTE, close, close + step, close - step, close, Decimal(k + 1), 1)
        )
    return candles


def atr_pct(candles: list[Candle]) -> float:
    atr = ATR(14)
    value = None
    for c in candles:
        value = atr.update_bar(c.high, c.low, c.close)
    assert value is not None
    return float(value / candles[-1].close * 100)


async def test_the_engine_scans_each_replayed_pair_up_to_its_cursor_only() -> None:
    btc, eth = current_catalog().resolve("XBTUSD"), current_catalog().resolve("ETHUSD")
    first = walk(btc.pair, Decimal(50000), Decimal(40), 50)
    second = walk(eth.pair, Decimal(3000), Decimal(3), 50)
    merged = [c for pair in zip(first, second, strict=True) for c in pair]  # one minute of each, in turn
    source = ReplayMarketSource(ReplaySource.from_events(merged, name="two pairs"), None, "two pairs")
    config = config_from_mapping({"strategies": [], "market": {"speed": "max"}})
    engine = Engine.from_config(config, None, source=source, options=RunOptions(max_events=80))
    async with engine.serve() as facade:
        with anyio.fail_after(30):
            await engine.done.wait()
        waits: list[float] = []
        token = OFF_LOOP.set(waits)  # as the control socket does around a call
        try:
            view = await facade.markets(quote="USD", top=5, size=100.0)
        finally:
            OFF_LOOP.reset(token)
    assert len(waits) == 1  # the scan's waits (the worker thread) are not charged to the socket's read budget
    got = {p.base: p for p in view.pairs}
    assert view.ranked == 2 and set(got) == {btc.base, eth.base}
    for inst, candles in ((btc, first[:40]), (eth, second[:40])):  # 80 events replayed: 40 of each
        pair = got[inst.base]
        assert (pair.pair, pair.candles, pair.last) == (inst.pair, 40, float(candles[-1].close))
        assert pair.atr_pct == pytest.approx(atr_pct(candles), abs=1e-4)
        assert pair.volume_24h_quote == pytest.approx(float(sum(c.volume * c.close for c in candles)), abs=0.01)
