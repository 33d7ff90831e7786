"""Two risk limits: ``max_orders_per_minute`` (a sliding 60 s window of accepted orders) and ``price_band_pct``
(a limit price on the fat-finger side of the mark). Expectations are recounted here with plain arithmetic."""

import re
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fakes.mcp_harness import paper_config, running_engine
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.instrument import Instrument
from engine.domain.orders import ClientOrderId, OrderSide, OrderType
from engine.errors import InvalidRequest, LimitExceeded
from engine.exchanges.port import OrderRequest
from engine.persistence import Store
from engine.risk.checks import ExposureSnapshot, Refusal, RiskEngine, TradingState
from engine.risk.limits import UNBOUNDED_RATE, RiskLimits
from engine.runtime.app import Engine, RunOptions
from engine.runtime.cli_status import render_status, saved_status
from engine.runtime.config import ConfigError, RiskConfig, config_from_mapping
from engine.runtime.restart import choose_limits

D = Decimal
S = 1_000_000_000
WINDOW = 60 * S
MARK = D(100000)
BTC = Instrument(pair="BTC/USD", ws_symbol="BTC/USD", rest_name="XXBTZUSD", base="BTC", quote="USD",
                 pair_decimals=1, lot_decimals=8, cost_decimals=5, ordermin=D("0.00005"), costmin=D("0.5"),
                 tick_size=D("0.1"))  # fmt: skip
AMPLE = ExposureSnapshot(D(0), D(0), 0, D(10) ** 9, D(1000), D(1000), "USD", None)


def order(side: OrderSide, ts_ns: int, limit: Decimal | None = None, qty: str = "0.001") -> OrderRequest:
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderRequest(ClientOrderId(f"o-{ts_ns}"), "BTC/USD", side, kind, D(qty), limit, ts_ns, strategy="s")


def only(**limits: object) -> RiskLimits:
    """Every limit off but the ones given."""
    return RiskLimits.unbounded().model_copy(update=limits)


# -- max_orders_per_minute ------------------------------------------------------------------------------------


def test_the_n_plus_first_entry_within_60_s_is_refused_and_goes_once_the_window_slides() -> None:
    risk = RiskEngine(only(max_orders_per_minute=3), RiskLimits.unbounded())
    t0 = 1_700_000_000 * S
    for ts in (t0, t0 + 10 * S, t0 + 20 * S):
        assert risk.assess(order(OrderSide.BUY, ts), BTC, MARK, AMPLE) is None
    refused = risk.assess(order(OrderSide.BUY, t0 + 59 * S), BTC, MARK, AMPLE)
    # The oldest (t0) leaves the window at t0 + 60 s: 1 s after this entry.
    assert refused == Refusal(
        "max_orders_per_minute",
        "3 orders accepted in the last 60 s: max_orders_per_minute is 3 (the next entry may go in 1.000 s)",
    )
    assert risk.refusals == 1
    assert risk.assess(order(OrderSide.BUY, t0 + 60 * S - 1), BTC, MARK, AMPLE) is not None
    assert risk.assess(order(OrderSide.BUY, t0 + 60 * S), BTC, MARK, AMPLE) is None  # t0 is out: exactly 60 s
    assert risk.orders_in_window(t0 + 60 * S) == 3  # t0 + 10, t0 + 20, t0 + 60 (refused ones never count)


def test_exits_pass_when_throttled_and_count_in_the_window() -> None:
    risk = RiskEngine(only(max_orders_per_minute=2), RiskLimits.unbounded())
    assert risk.assess(order(OrderSide.BUY, 0), BTC, MARK, AMPLE) is None
    assert risk.assess(order(OrderSide.BUY, 1 * S), BTC, MARK, AMPLE) is None
    for k in range(2, 6):  # throttled: exits still go (market and limit), and each counts
        assert risk.assess(order(OrderSide.SELL, k * S), BTC, MARK, AMPLE) is None
        assert risk.assess(order(OrderSide.SELL, k * S, MARK), BTC, MARK, AMPLE, mark=MARK) is None
    assert risk.orders_in_window(5 * S) == 10
    refused = risk.assess(order(OrderSide.BUY, 61 * S), BTC, MARK, AMPLE)  # the two buys left; 8 exits remain
    assert refused is not None and refused.reason.startswith("8 orders accepted in the last 60 s")
    # Exits in REDUCING are not throttled either.
    risk.state = TradingState.REDUCING
    assert risk.assess(order(OrderSide.SELL, 62 * S), BTC, MARK, AMPLE) is None


def test_unbounded_limits_never_throttle() -> None:
    risk = RiskEngine(RiskLimits.unbounded(), RiskLimits.unbounded())
    assert RiskLimits.unbounded().max_orders_per_minute == UNBOUNDED_RATE
    results = [risk.assess(order(OrderSide.BUY, 5 * S), BTC, MARK, AMPLE) for _ in range(3000)]
    assert results == [None] * 3000 and risk.orders_in_window(5 * S) == 3000


steps = st.one_of(st.sampled_from([0, 1, 10 * S, 30 * S, WINDOW - 1, WINDOW]), st.integers(0, 40 * S))


@settings(max_examples=300, deadline=None)
@given(
    most=st.integers(1, 5),
    plan=st.lists(st.tuples(steps, st.sampled_from([OrderSide.BUY, OrderSide.BUY, OrderSide.SELL])), max_size=50),
)
def test_the_throttle_agrees_with_a_plain_recount(most: int, plan: list[tuple[int, OrderSide]]) -> None:
    risk = RiskEngine(only(max_orders_per_minute=most), RiskLimits.unbounded())
    accepted: list[int] = []  # the recount: every accepted time, in a plain list
    now = 10**18
    for step, side in plan:
        now += step
        recent = [t for t in accepted if now - t < WINDOW]
        refusal = risk.assess(order(side, now), BTC, MARK, AMPLE)
        if side is OrderSide.SELL or len(recent) < most:
            assert refusal is None
            accepted.append(now)
        else:
            wait = D(sorted(recent)[len(recent) - most] + WINDOW - now) / S
            assert refusal == Refusal(
                "max_orders_per_minute",
                f"{len(recent)} orders accepted in the last 60 s: max_orders_per_minute is {most} "
                f"(the next entry may go in {wait:.3f} s)",
            )
        assert risk.orders_in_window(now) == len([t for t in accepted if now - t < WINDOW])


# -- price_band_pct -------------------------------------------------------------------------------------------


def test_a_buy_limit_11_pct_above_the_mark_is_refused_with_a_10_pct_band_and_9_pct_goes() -> None:
    risk = RiskEngine(only(price_band_pct=D(10)), RiskLimits.unbounded())
    high = risk.assess(order(OrderSide.BUY, 1, MARK * D("1.11")), BTC, MARK, AMPLE, mark=MARK)
    assert high == Refusal(
        "price_band_pct",
        "buy limit 111000.00 is 11.00% above the BTC/USD mark 100000: price_band_pct is 10% "
        "(a buy limit above 110000 is refused)",
    )
    assert risk.assess(order(OrderSide.BUY, 2, MARK * D("1.09")), BTC, MARK, AMPLE, mark=MARK) is None
    assert risk.assess(order(OrderSide.BUY, 3, D(110000)), BTC, MARK, AMPLE, mark=MARK) is None  # on the edge
    assert risk.assess(order(OrderSide.BUY, 4, D("110000.1")), BTC, MARK, AMPLE, mark=MARK) is not None
    assert (
        risk.assess(order(OrderSide.BUY, 5, D(1000)), BTC, MARK, AMPLE, mark=MARK) is None
    )  # far below: no fat finger


def test_a_sell_limit_below_the_band_is_refused_even_as_an_exit_but_a_market_exit_never() -> None:
    risk = RiskEngine(only(price_band_pct=D("2.5")), RiskLimits.unbounded())
    low = D(97499)  # 2.501% below; the bound is 100000 × 0.975 = 97500
    refusal = risk.assess(order(OrderSide.SELL, 1, low), BTC, MARK, AMPLE, mark=MARK)
    assert refusal is not None and refusal.rule == "price_band_pct"
    assert refusal.reason == (
        "sell limit 97499 is 2.50% below the BTC/USD mark 100000: price_band_pct is 2.5% "
        "(a sell limit below 97500 is refused)"
    )
    assert risk.assess(order(OrderSide.SELL, 2, D(97500)), BTC, MARK, AMPLE, mark=MARK) is None
    assert risk.assess(order(OrderSide.SELL, 3, MARK * 3), BTC, MARK, AMPLE, mark=MARK) is None  # above: fine
    assert risk.assess(order(OrderSide.SELL, 4), BTC, MARK, AMPLE, mark=MARK / 100) is None  # a market exit


def test_market_orders_are_never_band_checked_and_no_mark_means_no_band_check() -> None:
    risk = RiskEngine(only(price_band_pct=D(1)), RiskLimits.unbounded())
    # A market buy valued at a reference far from the mark: no price of its own, so no band.
    assert risk.assess(order(OrderSide.BUY, 1), BTC, MARK * 5, AMPLE, mark=MARK) is None
    assert risk.assess(order(OrderSide.BUY, 2, MARK * 2), BTC, MARK * 2, AMPLE) is None  # no mark given
    assert risk.refuse_unmarked(order(OrderSide.BUY, 3)) is None
    unmarked = risk.refuse_unmarked(order(OrderSide.BUY, 4, MARK))
    assert unmarked == Refusal(
        "price_band_pct", "no mark known yet for BTC/USD: the limit price 100000 cannot be held to price_band_pct 1%"
    )
    assert (
        RiskEngine(RiskLimits.unbounded(), RiskLimits.unbounded()).refuse_unmarked(order(OrderSide.BUY, 5, MARK))
        is None
    )
    with pytest.raises(InvalidRequest, match="the mark must be a positive price, got 0"):
        risk.assess(order(OrderSide.BUY, 6, MARK), BTC, MARK, AMPLE, mark=D(0))
    assert risk.orders_in_window(6) == 2  # the refused and the bad call counted nothing


@settings(max_examples=300, deadline=None)
@given(
    band=st.decimals(min_value=D("0.01"), max_value=D(150), places=2),
    mark=st.decimals(min_value=D(1), max_value=D(10) ** 6, places=1),
    ticks=st.integers(5, 10**8),  # at least Kraken's costmin (0.5) for one BTC
    side=st.sampled_from(list(OrderSide)),
)
def test_the_band_agrees_with_a_plain_percentage(band: Decimal, mark: Decimal, ticks: int, side: OrderSide) -> None:
    limit = D("0.1") * ticks
    risk = RiskEngine(only(price_band_pct=band), RiskLimits.unbounded())
    refusal = risk.assess(order(side, 1, limit, qty="1"), BTC, mark, AMPLE, mark=mark)
    off_pct = (limit - mark) / mark * 100  # signed: positive above the mark
    fat_finger = off_pct > band if side is OrderSide.BUY else -off_pct > band
    assert (refusal is not None) == fat_finger, (refusal, off_pct)
    if refusal is not None:
        assert refusal.rule == "price_band_pct"


# -- the limits and the caps ----------------------------------------------------------------------------------


def test_propose_limits_tightens_freely_and_loosens_only_to_the_cap() -> None:
    caps = RiskLimits(max_orders_per_minute=100, price_band_pct=D(20))
    risk = RiskEngine(RiskLimits(), caps)
    before = risk.limits
    assert (before.max_orders_per_minute, before.price_band_pct) == (60, D(10))
    with pytest.raises(LimitExceeded, match="max_orders_per_minute 101 is above the operator's cap 100"):
        risk.propose_limits({"max_orders_per_minute": 101})
    with pytest.raises(LimitExceeded, match=re.escape("price_band_pct 20.5 is above the operator's cap 20")):
        risk.propose_limits({"price_band_pct": "20.5"})
    for bad in ({"max_orders_per_minute": 0}, {"max_orders_per_minute": 2.5}, {"price_band_pct": "-1"}):
        with pytest.raises(InvalidRequest):
            risk.propose_limits(bad)
    tighter = risk.propose_limits({"max_orders_per_minute": 5, "price_band_pct": 2.5})
    assert (tighter.max_orders_per_minute, tighter.price_band_pct) == (5, D("2.5"))
    assert risk.propose_limits({"max_orders_per_minute": 100, "price_band_pct": 20}).price_band_pct == D(20)
    assert risk.limits == before  # proposing applies nothing


def test_the_configuration_refuses_new_limits_above_their_caps_and_ships_caps_above_the_defaults() -> None:
    shipped = RiskConfig()
    assert (shipped.limits.max_orders_per_minute, shipped.caps.max_orders_per_minute) == (60, 600)
    assert (shipped.limits.price_band_pct, shipped.caps.price_band_pct) == (D(10), D(50))
    with pytest.raises(ConfigError, match=re.escape("max_orders_per_minute exceeds risk.caps.max_orders_per_minute")):
        config_from_mapping({"risk": {"limits": {"max_orders_per_minute": 601}}})
    with pytest.raises(ConfigError, match=re.escape("price_band_pct exceeds risk.caps.price_band_pct")):
        config_from_mapping({"risk": {"limits": {"price_band_pct": "50.01"}}})


def test_a_restart_keeps_the_saved_new_limits_clamped_and_an_older_state_takes_the_configured_ones() -> None:
    configured = RiskLimits(max_orders_per_minute=30, price_band_pct=D(5))
    caps = RiskLimits(max_orders_per_minute=40, price_band_pct=D(8))
    saved = configured.model_copy(update={"max_orders_per_minute": 12, "price_band_pct": D(9)})
    decided = choose_limits(configured, caps, saved.model_dump(mode="json"), configured.model_dump(mode="json"))
    assert (decided.value.max_orders_per_minute, decided.value.price_band_pct) == (12, D(8))  # 9 > cap 8: clamped
    assert [note.get("limit") for note in decided.notes] == ["price_band_pct"]
    # A state saved before these limits existed lacks them: the configuration's values apply, nothing else moves.
    older = {
        k: v for k, v in saved.model_dump(mode="json").items() if k not in ("max_orders_per_minute", "price_band_pct")
    }
    older_configured = {k: v for k, v in configured.model_dump(mode="json").items() if k in older}
    kept = choose_limits(configured, caps, older, older_configured)
    assert (kept.value.max_orders_per_minute, kept.value.price_band_pct) == (30, D(5)) and kept.notes == []


# -- the facade's manual orders -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_manual_limit_order_outside_the_band_is_refused_recorded_and_changes_nothing() -> None:
    async with running_engine(paper_config()) as (engine, facade):
        mark = engine.portfolio.marks["BTC/USD"]
        band = engine.risk.limits.price_band_pct
        assert band == D(10)
        before = dict(engine.oms.orders)
        fat = (mark * D("1.11")).quantize(D("0.1"))
        with pytest.raises(
            LimitExceeded, match=r"refused by risk: buy limit .* above the BTC/USD mark .*price_band_pct is 10%"
        ):
            await facade.submit_order("BTC/USD", "buy", D("0.0001"), fat, source="test")
        assert engine.oms.orders == before
        (event,) = [
            e for e in await facade.events(kind="order_refused", limit=500) if e.payload["strategy"] == "manual"
        ]
        assert event.payload["rule"] == "price_band_pct"
        # ETH/USD has no mark yet: a limit order's band cannot be measured, so it is refused, not assumed met.
        with pytest.raises(LimitExceeded, match="no mark known yet for ETH/USD: the limit price 2000 cannot be held"):
            await facade.submit_order("ETH/USD", "buy", D("0.01"), D(2000), source="test")
        assert engine.oms.orders == before
        near = (mark * D("1.09")).quantize(D("0.1"))
        placed = await facade.submit_order("BTC/USD", "buy", D("0.0001"), near, source="test")
        assert placed.limit_price == near and len(engine.oms.orders) == len(before) + 1


@pytest.mark.anyio
async def test_manual_orders_are_throttled_and_the_risk_view_shows_the_window_and_the_band() -> None:
    config = paper_config(risk={"limits": {"max_orders_per_minute": 2, "price_band_pct": "7.5"}})
    async with running_engine(config) as (engine, facade):
        low = (engine.portfolio.marks["BTC/USD"] / 2).quantize(D("0.1"))  # rests far below the market
        used_before = engine.risk.orders_in_window(engine.clock.now_ns())  # the strategies' own, if any
        for _ in range(2 - used_before):
            await facade.submit_order("BTC/USD", "buy", D("0.0001"), low, source="test")
        opened = set(engine.oms.open_ids)
        with pytest.raises(LimitExceeded, match="2 orders accepted in the last 60 s: max_orders_per_minute is 2"):
            await facade.submit_order("BTC/USD", "buy", D("0.0001"), low, source="test")
        assert set(engine.oms.open_ids) == opened
        view = {limit.name: limit for limit in (await facade.risk()).limits}
        assert (view["max_orders_per_minute"].value, view["max_orders_per_minute"].cap) == (D(2), D(600))
        assert view["max_orders_per_minute"].used == 2
        assert (view["price_band_pct"].value, view["price_band_pct"].cap, view["price_band_pct"].used) == (
            D("7.5"),
            D(50),
            None,
        )
        with pytest.raises(LimitExceeded, match="price_band_pct 51 is above the operator's cap 50"):
            await facade.set_risk_limits({"price_band_pct": 51}, source="test")
        tightened = await facade.set_risk_limits({"price_band_pct": "1", "max_orders_per_minute": 1}, source="test")
        assert {limit.name: limit.value for limit in tightened.limits}["price_band_pct"] == D(1)
        assert engine.risk.limits.max_orders_per_minute == 1


@pytest.mark.anyio
async def test_the_status_command_shows_the_saved_limits_with_the_new_ones(tmp_path: Path) -> None:
    config = paper_config(risk={"limits": {"max_orders_per_minute": 7, "price_band_pct": "2.5"}})
    db = tmp_path / "s.db"
    engine = Engine.from_config(config, db_path=db, options=RunOptions(max_events=3))
    async with engine.serve():
        with anyio.fail_after(30):
            await engine.done.wait()
    with Store.open_readonly(db) as store:
        report = saved_status(store)
    assert report["risk_limits"]["max_orders_per_minute"] == 7
    assert D(report["risk_limits"]["price_band_pct"]) == D("2.5")
    line = next(line for line in render_status(report).splitlines() if line.startswith("risk limits: "))
    assert "max_orders_per_minute 7" in line and "price_band_pct 2.5%" in line and "max_open_orders 20" in line
