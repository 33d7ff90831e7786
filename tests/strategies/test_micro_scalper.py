"""micro_scalper's decisions on hand-made books, checked against values worked out by hand in each test: the
spread and the imbalance, which side it quotes at which touch, how much, and when the inventory limit, an open
order, dust or a locked book stop it; and its parameters at the edges of their declared ranges."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.market_data import BookLevel, BookSnapshot
from engine.runtime.config import config_from_mapping
from engine.strategies import REGISTRY, BookContext, EmaCross, MicroScalper, ParamError, Quote, strategy_class
from engine.strategies.micro_scalper import book_imbalance, spread_bps
from trading_mcp.cli import main

D = Decimal
NS = 10**9
MIN_QTY = D("0.00005")  # BTC/USD's ordermin


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]], ts: int = 0) -> BookSnapshot:
    return BookSnapshot(
        "BTC/USD",
        ts,
        tuple(BookLevel(D(p), D(q)) for p, q in bids),
        tuple(BookLevel(D(p), D(q)) for p, q in asks),
    )


def ctx(position: str = "0", buys: str = "0", sells: str = "0", budget: str = "300") -> BookContext:
    return BookContext(D(position), D(buys), D(sells), D(budget), MIN_QTY)


# bids 2 + 1 = 3, asks 1 + 1 = 2 over the top 5 levels: imbalance (3 - 2) / 5 = 0.2 exactly (the default minimum).
# Spread 400 / 50200 × 10,000 = 79.68 bps (at least the default 60).
WIDE = book([("50000.0", "2"), ("49990.0", "1")], [("50400.0", "1"), ("50410.0", "1")])


def test_spread_is_in_basis_points_of_the_mid() -> None:
    # 1 / 100.5 × 10,000 = 99.50248756...
    assert abs(spread_bps(D(100), D(101)) - D("99.5024875622")) < D("1e-9")
    # 400 / 50,000 × 10,000 = 80 exactly
    assert spread_bps(D(49800), D(50200)) == 80


def test_imbalance_over_the_top_levels() -> None:
    bids = (BookLevel(D(100), D(3)), BookLevel(D(99), D(1)), BookLevel(D(98), D(5)))
    asks = (BookLevel(D(101), D(2)), BookLevel(D(102), D(2)), BookLevel(D(103), D(7)))
    assert book_imbalance(bids, asks, 1) == D("0.2")  # (3 - 2) / 5
    assert book_imbalance(bids, asks, 2) == 0  # (4 - 4) / 8
    assert book_imbalance(bids, asks, 3) == D("-0.1")  # (9 - 11) / 20
    assert book_imbalance(bids, asks, 10) == D("-0.1")  # the book shows 3 levels: those
    assert book_imbalance(bids, (), 5) == 1
    assert book_imbalance((), asks, 5) == -1
    assert book_imbalance((), (), 5) is None


def test_a_flat_scalper_bids_at_the_touch_for_its_budget() -> None:
    quotes = MicroScalper().on_book(WIDE, ctx(budget="300"))
    assert len(quotes) == 1
    quote = quotes[0]
    assert (quote.side, quote.price, quote.ttl_ns) == ("buy", D("50000.0"), 10 * NS)
    assert quote.qty == D("0.006")  # 300 / 50,000; the inventory limit allows 1000 / 50,000 = 0.02


def test_the_spread_threshold_is_inclusive() -> None:
    strategy = MicroScalper({"min_spread_bps": 80, "min_imbalance": -1})
    at_80 = book([("49800", "1")], [("50200", "1")])  # 80 bps exactly
    below = book([("49801", "1")], [("50200", "1")])  # 399 / 50,000.5 × 10,000 = 79.798... bps
    assert [q.side for q in strategy.on_book(at_80, ctx())] == ["buy"]
    assert strategy.on_book(below, ctx()) == ()


def test_the_imbalance_threshold_is_inclusive_and_counts_depth_levels() -> None:
    leaning = MicroScalper({"min_imbalance": "0.2"})
    assert [q.side for q in leaning.on_book(WIDE, ctx())] == ["buy"]  # 0.2 exactly
    stricter = MicroScalper({"min_imbalance": "0.21"})
    assert stricter.on_book(WIDE, ctx()) == ()
    # Over the best level only: (2 - 1) / 3 = 0.333...; a minimum of 0.3 passes there and fails over 5 levels.
    assert [q.side for q in MicroScalper({"min_imbalance": "0.3", "depth_levels": 1}).on_book(WIDE, ctx())] == ["buy"]
    assert MicroScalper({"min_imbalance": "0.3", "depth_levels": 5}).on_book(WIDE, ctx()) == ()


def test_the_inventory_limit_shrinks_the_bid_and_then_stops_it() -> None:
    strategy = MicroScalper({"max_inventory_quote": 500, "min_imbalance": -1})
    # Holding 0.006: room 500 / 50,000 - 0.006 = 0.004, less than the budget's 0.006 (and the position is offered).
    quotes = {q.side: q for q in strategy.on_book(WIDE, ctx(position="0.006", budget="300"))}
    assert quotes["buy"].qty == D("0.004") and quotes["buy"].price == D("50000.0")
    assert (quotes["sell"].qty, quotes["sell"].price) == (D("0.006"), D("50400.0"))
    # A non-round room: holding 0.006 with the bid at 49,850: 500 / 49,850 - 0.006 = 0.0040300902708...
    other = book([("49850.0", "4")], [("50250.0", "1")])
    buy = next(q for q in strategy.on_book(other, ctx(position="0.006", sells="0.006")) if q.side == "buy")
    assert abs(buy.qty - D("0.00403009027081")) < D("1e-13")
    assert buy.qty * D("49850.0") + D("0.006") * D("49850.0") <= 500
    # At the limit (0.01 × 50,000 = 500) or with less room than the order minimum: no bid.
    assert [q.side for q in strategy.on_book(WIDE, ctx(position="0.01"))] == ["sell"]
    assert [q.side for q in strategy.on_book(WIDE, ctx(position="0.00996"))] == ["sell"]  # room 0.00004 < 0.00005


def test_one_buy_and_one_sell_rest_at_most() -> None:
    strategy = MicroScalper({"min_imbalance": -1})
    assert strategy.on_book(WIDE, ctx(buys="0.006")) == ()
    assert [q.side for q in strategy.on_book(WIDE, ctx(position="0.006", sells="0.006"))] == ["buy"]
    assert [q.side for q in strategy.on_book(WIDE, ctx(position="0.006", buys="0.001"))] == ["sell"]


def test_the_position_is_offered_at_the_ask_whatever_the_spread_but_dust_is_not() -> None:
    narrow = book([("50000.0", "1")], [("50000.1", "9")])  # 0.02 bps, leaning to the asks: no bid
    quotes = MicroScalper().on_book(narrow, ctx(position="0.0123"))
    assert quotes == (Quote("sell", D("50000.1"), D("0.0123"), 10 * NS, quotes[0].reason),)
    assert MicroScalper().on_book(narrow, ctx(position="0.00004")) == ()  # below the order minimum


def test_a_locked_crossed_or_one_sided_book_gets_no_quote() -> None:
    strategy = MicroScalper({"min_spread_bps": 0, "min_imbalance": -1})
    held = ctx(position="0.01")
    assert strategy.on_book(book([("100", "1")], [("100", "1")]), held) == ()
    assert strategy.on_book(book([("101", "1")], [("100", "1")]), held) == ()
    assert strategy.on_book(book([], [("100", "1")]), held) == ()
    assert strategy.on_book(book([("100", "1")], []), held) == ()


def test_a_budget_below_the_order_minimum_posts_nothing() -> None:
    # 2 / 50,000 = 0.00004 < 0.00005
    assert MicroScalper({"min_imbalance": -1}).on_book(WIDE, ctx(budget="2")) == ()


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("depth_levels", [1, 100], [0, 101]),
        ("min_spread_bps", ["0", "10000"], ["-0.01", "10000.01"]),
        ("min_imbalance", ["-1", "1"], ["-1.01", "1.01"]),
        ("ttl_s", [5, 3600], [4, 3601]),
        ("max_inventory_quote", ["1", "1000000000"], ["0.99", "1000000000.01"]),
    ],
)
def test_parameters_are_held_to_their_declared_ranges(name: str, good: list[object], bad: list[object]) -> None:
    for value in good:
        assert MicroScalper({name: value}).values[name] == (value if isinstance(value, int) else D(str(value)))
    for value in bad:
        with pytest.raises(ParamError, match=name):
            MicroScalper({name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("entry_limit_bps", "0"),
        ("entry_post_only", True),
        ("entry_ttl_candles", 5),
        ("entry_reprices", 1),
        ("equity_fraction_pct", "1"),
        ("risk_per_trade_pct", "1"),
    ],
)
def test_candle_entry_and_sizing_parameters_are_refused(name: str, value: object) -> None:
    with pytest.raises(ParamError, match=f"{name}: micro_scalper"):
        MicroScalper({name: value})


def test_it_is_registered_as_a_book_strategy_and_cannot_join_a_group() -> None:
    assert REGISTRY["micro_scalper"] is MicroScalper and strategy_class("micro_scalper") is MicroScalper
    assert MicroScalper.uses_book() and not EmaCross.uses_book()
    entry = {"name": "s", "kind": "micro_scalper", "pair": "BTC/USD", "group": "g"}
    other = {"name": "e", "kind": "ema_cross", "pair": "BTC/USD", "group": "g"}
    with pytest.raises(ValueError, match="micro_scalper quotes on the book and cannot vote in a group"):
        config_from_mapping({"strategies": [entry, other]})


def test_trading_mcp_strategies_lists_it_with_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategies", "--json"]) == 0
    listed = {s["kind"]: s for s in json.loads(capsys.readouterr().out)["strategies"]}
    scalper = listed["micro_scalper"]
    assert scalper["source"] == "built-in" and "post-only" in scalper["description"]
    assert [(p["name"], p["type"], p["minimum"], p["maximum"], p["default"]) for p in scalper["params"]] == [
        ("depth_levels", "int", 1, 100, 5),
        ("min_spread_bps", "decimal", "0", "10000", "60"),
        ("min_imbalance", "decimal", "-1", "1", "0.2"),
        ("ttl_s", "int", 5, 3600, 10),
        ("max_inventory_quote", "decimal", "1", "1000000000", "1000"),
    ]
    assert all(p["description"] for p in scalper["params"])
    assert main(["strategies"]) == 0
    assert "micro_scalper (built-in)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["backtest", "optimize"])
def test_a_candle_backtest_or_optimisation_of_it_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
    db = tmp_path / "runs.db"
    argv = [command, "--data", str(sample), "--pair", "BTC/USDT", "--strategy", "micro_scalper", "--db", str(db)]
    if command == "optimize":
        argv += ["--param", "min_spread_bps=10:100"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"trading-mcp {command}: micro_scalper trades on the L2 book, which candle data does not carry: a backtest "
        "would never trade; replay book snapshots through the engine instead (README: Book strategies)\n"
    )
    assert not db.exists()
