"""Limit and post-only entries with a time-to-live, through the paper venue in a replay.

Every entry the strategy makes is checked against what the parameters and the candles say, recomputed here: its
limit is the decision candle's close less ``entry_limit_bps`` rounded down to the tick, it expires
``entry_ttl_candles`` candles after the decision candle's close, an entry that expired is sent again at the next
candle's close for what it left unfilled while reprices remain, and a limit buy never fills above its limit.
"""

import itertools
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import anyio
import pytest
from backtest.ema_cross_reference import read_candles

from engine.domain.orders import Order, OrderSide, OrderStatus, OrderType
from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping

pytestmark = pytest.mark.anyio
SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
NS = 10**9
TICK = Decimal("0.1")


def _config(params: dict[str, object]) -> object:
    return config_from_mapping(
        {
            "quote_currency": "USDT",
            "market": {"speed": "max", "file": str(SAMPLE), "pair": "BTC/USDT"},
            "paper": {"starting_balances": {"USDT": "10000"}, "fee_volume_30d": "0"},
            "strategies": [
                {"name": "lim", "kind": "ema_cross", "pair": "BTC/USDT", "params": {"fast": 5, "slow": 20, **params}}
            ],
        }
    )


async def _orders(tmp_path: Path, params: dict[str, object]) -> tuple[list[Order], list[tuple[str, Decimal, str]]]:
    db = tmp_path / "limit.db"
    engine = Engine.from_config(_config(params), db)  # type: ignore[arg-type]
    with anyio.fail_after(120):
        await engine.run()
    with Store.open_readonly(db) as store:
        orders = store.load_orders()
        fills = [(f.side.value, f.price, f.liquidity) for f in store.load_fills()]
    return orders, fills


async def test_limit_entries_expire_and_are_repriced_as_the_parameters_say(tmp_path: Path) -> None:
    bps, ttl, reprices = Decimal(3), 2, 1
    params = {"entry_limit_bps": str(bps), "entry_ttl_candles": ttl, "entry_reprices": reprices}
    orders, _ = await _orders(tmp_path, params)
    closes = {(c.time + 60) * NS: c.close for c in read_candles(SAMPLE)}  # decision time -> its candle's close
    buys = [o for o in orders if o.side is OrderSide.BUY]
    assert buys and all(o.order_type is OrderType.LIMIT for o in buys)
    statuses = {o.status for o in buys}
    assert OrderStatus.EXPIRED in statuses and OrderStatus.FILLED in statuses, statuses
    repriced = 0
    for order in buys:
        close = closes[order.created_ts_ns]
        expected = (close * (1 - bps / 10_000) / TICK).quantize(Decimal(1), rounding=ROUND_DOWN) * TICK
        assert order.limit_price == expected
        assert order.expires_ns == order.created_ts_ns + ttl * 60 * NS
        if order.avg_price is not None:
            assert order.avg_price <= order.limit_price
    for before, after in itertools.pairwise(buys):
        if before.status is OrderStatus.EXPIRED and after.created_ts_ns == before.expires_ns:
            # Sent again on the candle whose close the expiry is, for what was left.
            assert after.qty == before.qty - before.filled_qty
            repriced += 1
    assert repriced >= 1
    # No chain is longer than 1 + reprices: an entry repriced once is not sent a third time.
    chain = 1
    for before, after in itertools.pairwise(buys):
        chain = chain + 1 if before.status is OrderStatus.EXPIRED and after.created_ts_ns == before.expires_ns else 1
        assert chain <= 1 + reprices


async def test_abandoned_entries_are_not_sent_again_and_post_only_rests(tmp_path: Path) -> None:
    params = {"entry_limit_bps": "3", "entry_ttl_candles": 1, "entry_post_only": True}
    orders, fills = await _orders(tmp_path, params)
    buys = [o for o in orders if o.side is OrderSide.BUY]
    bought = [liquidity for side, _, liquidity in fills if side == "buy"]
    assert bought and set(bought) == {"maker"}, "a post-only entry never takes liquidity"
    expired = [o for o in buys if o.status is OrderStatus.EXPIRED]
    assert expired
    for order in expired:
        assert not any(o.created_ts_ns == order.expires_ns for o in buys), "an abandoned entry was sent again"


async def test_stopping_while_entries_rest_or_expire_changes_no_order_or_fill(tmp_path: Path) -> None:
    """An entry resting (partly filled or not) across a restart still expires and is repriced as in the
    uninterrupted run: the restarted engine picks up the chain where it stood."""
    params = {"entry_limit_bps": "3", "entry_ttl_candles": 2, "entry_reprices": 2}
    straight = tmp_path / "straight.db"
    engine = Engine.from_config(_config(params), straight)  # type: ignore[arg-type]
    with anyio.fail_after(120):
        await engine.run()
    with Store.open_readonly(straight) as store:
        orders = store.load_orders()
        expected = [(f.ts_ns, f.side.value, f.price, f.qty, f.fee) for f in store.load_fills()]
    first_open_ns = read_candles(SAMPLE)[0].time * NS
    # Stop one candle after each of the first repriced entries was sent (it rests across the restart).
    sent = [o.created_ts_ns for o in orders if o.side is OrderSide.BUY]
    cuts = sorted({(ts - first_open_ns) // (60 * NS) for ts in sent[:10]})
    assert len(cuts) >= 5
    resumed = tmp_path / "resumed.db"
    done = 0
    for cut in cuts:
        engine = Engine.from_config(_config(params), resumed, options=RunOptions(max_events=cut - done))  # type: ignore[arg-type]
        with anyio.fail_after(120):
            await engine.run()
        done = cut
    engine = Engine.from_config(_config(params), resumed)  # type: ignore[arg-type]
    with anyio.fail_after(120):
        await engine.run()
    with Store.open_readonly(resumed) as store:
        got = [(f.ts_ns, f.side.value, f.price, f.qty, f.fee) for f in store.load_fills()]
        got_orders = [(o.created_ts_ns, o.side, o.qty, o.limit_price, o.status) for o in store.load_orders()]
    assert got == expected
    assert got_orders == [(o.created_ts_ns, o.side, o.qty, o.limit_price, o.status) for o in orders]
