"""Kraken's REST call counter and per-pair trading rate counter, including the two official examples."""

import json
from pathlib import Path

import pytest

from engine.exchanges.kraken import RestCallCounter, TradingRateCounter
from engine.exchanges.kraken.protocol.rate_limits import (
    amend_cost,
    batch_add_cost,
    batch_cancel_cost,
    cancel_cost,
    edit_cost,
)


def test_official_example_add_amend_cancel_totals_8() -> None:
    # docs.kraken.com spot-ratelimits: add (+1), amend after 7 s (+1 fixed, +2), cancel 36 s later (+4) = 8.
    counter = TradingRateCounter("intermediate")
    assert counter.record_add(0.0) == 1
    assert counter.record_amend(7.0, 0.0) == 1 + 2
    assert counter.record_cancel(36.0, 0.0) == 4
    # Recorded at one instant (the example ignores decay), the counter holds the total.
    assert counter.value(0.0) == pytest.approx(8)


def test_official_example_intermediate_50_adds_then_10_s() -> None:
    counter = TradingRateCounter("intermediate")
    for _ in range(50):
        counter.record_add(100.0)
    assert counter.value(110.0) == pytest.approx(26.6)


def test_official_examples_from_shared(shared_dir: Path) -> None:
    path = shared_dir / "kraken" / "vectors.json"
    if not path.is_file():
        pytest.skip("vectors.json absent")
    first, second = json.loads(path.read_text())["trading_rate_counter_examples"]
    add, amend_fixed, amend_decaying, cancel = first["increments"]
    assert (add, amend_fixed + amend_decaying, cancel) == (1, amend_cost(7.0), cancel_cost(36.0))
    assert sum(first["increments"]) == first["total"]
    counter = TradingRateCounter("intermediate")
    for _ in range(50):
        counter.record_add(0.0)
    assert counter.value(10.0) == pytest.approx(second["result"])


@pytest.mark.parametrize(
    ("age", "amend", "edit", "cancel"),
    [
        (0.0, 4, 7, 8),
        (4.99, 4, 7, 8),
        (5.0, 3, 6, 6),
        (12.0, 2, 5, 5),
        (15.0, 1, 3, 4),
        (60.0, 1, 2, 2),
        (100.0, 1, 1, 1),
        (299.0, 1, 1, 1),
        (300.0, 1, 1, 0),
    ],
)
def test_cost_tables(age: float, amend: int, edit: int, cancel: int) -> None:
    assert amend_cost(age) == amend
    assert edit_cost(age) == edit
    assert cancel_cost(age) == cancel


def test_batch_costs() -> None:
    assert batch_add_cost(4) == 2
    assert batch_add_cost(3) == 1.5
    assert batch_cancel_cost([1.0, 1.0, 20.0]) == 8 + 8 + 4


def test_trading_threshold_and_wait() -> None:
    counter = TradingRateCounter("starter")  # threshold 60, decay 1/s
    for _ in range(59):
        counter.record_add(0.0)
    assert not counter.would_exceed(1, 0.0)
    assert counter.would_exceed(2, 0.0)
    assert counter.wait_time(3, 0.0) == pytest.approx(2.0)
    assert not counter.would_exceed(3, 2.0)
    # Decay never goes below zero; a clock stepping back does not add.
    assert counter.value(1_000.0) == 0
    assert counter.value(-5.0) == pytest.approx(59)


def test_rest_counter_costs() -> None:
    counter = RestCallCounter("starter", costs={"Balance": 3})
    assert counter.cost_of("Balance") == 3
    assert counter.cost_of("OpenOrders") == 1
    assert counter.cost_of("TradesHistory") == 2
    assert counter.cost_of("Ledgers") == 2
    assert counter.cost_of("AddOrder") == 0
    assert counter.cost_of("CancelOrder") == 0
    assert counter.cost_of("Ticker") == 0
    assert RestCallCounter("pro", history_cost=4).cost_of("QueryTrades") == 4


def test_rest_counter_limit_decay_and_wait() -> None:
    counter = RestCallCounter("intermediate")  # max 20, decay 0.5/s
    for _ in range(10):
        counter.record("TradesHistory", 0.0)
    assert counter.value(0.0) == 20
    assert counter.would_exceed("OpenOrders", 0.0)
    assert counter.wait_time("OpenOrders", 0.0) == pytest.approx(2.0)
    assert not counter.would_exceed("AddOrder", 0.0)
    assert not counter.would_exceed("OpenOrders", 2.0)
    counter.record("OpenOrders", 2.0)
    assert counter.value(2.0) == pytest.approx(20)
    assert counter.value(42.0) == 0


def test_rest_tiers() -> None:
    starter = RestCallCounter("starter")
    assert (starter.tier.max_count, starter.tier.decay_per_s) == (15, 0.33)
    pro = RestCallCounter("pro")
    assert (pro.tier.max_count, pro.tier.decay_per_s) == (20, 1.0)
    assert TradingRateCounter("pro").tier.threshold == 180
