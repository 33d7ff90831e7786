"""portfolio_rebalance: the orders of a rebalance worked out by hand (prices, holdings, weights, band, fee -> exact
quantities), nothing inside the band, the fee-aware skip, cash as a target of its own, the limits and the cash a
rebalance may spend, and the parameters and configuration refused at their edges."""

import json
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest
from strategies.shipped_backtest import backtest_json, shipped_candles, usdt_config

from engine.domain.fee_schedule import FeeTier
from engine.domain.instrument import Instrument
from engine.domain.orders import OrderSide
from engine.runtime.cli import main
from engine.runtime.config import ConfigError, config_from_mapping
from engine.strategies import Book, ParamError, PlannedOrder, PortfolioRebalance, strategy_class

D = Decimal
BIG = D(10) ** 9
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def instrument(pair: str, lot_decimals: int, ordermin: str, taker_pct: str = "0.40") -> Instrument:
    base, quote = pair.split("/")
    return Instrument(
        pair=pair,
        ws_symbol=pair,
        rest_name=base + quote,
        base=base,
        quote=quote,
        pair_decimals=1,
        lot_decimals=lot_decimals,
        cost_decimals=5,
        ordermin=D(ordermin),
        costmin=D("0.5"),
        tick_size=D("0.1"),
        fees_taker=(FeeTier(D(0), D(taker_pct)),),
        fees_maker=(FeeTier(D(0), D("0.25")),),
    )


BTC = instrument("BTC/USD", 8, "0.0001")
ETH = instrument("ETH/USD", 4, "0.01")
INSTRUMENTS = {"BTC/USD": BTC, "ETH/USD": ETH}


def book(
    holdings: dict[str, Decimal],
    cash: Decimal,
    prices: dict[str, Decimal] | None = None,
    *,
    buy_limits: dict[str, Decimal] | None = None,
    total_buy_limit: Decimal = BIG,
    max_order_qty: Decimal = BIG,
    instruments: dict[str, Instrument] | None = None,
) -> Book:
    """A book whose equity is the cash plus the holdings at the prices (the account holds nothing else)."""
    prices = prices if prices is not None else {"BTC/USD": D(50000), "ETH/USD": D(2500)}
    pairs = tuple(holdings)
    equity = cash + sum((holdings[p] * prices[p] for p in pairs if p in prices), D(0))
    return Book(
        pairs=pairs,
        prices=prices,
        holdings=holdings,
        equity=equity,
        cash=cash,
        instruments=instruments or INSTRUMENTS,
        buy_limits=buy_limits or dict.fromkeys(pairs, BIG),
        total_buy_limit=total_buy_limit,
        max_order_qty=max_order_qty,
    )


def rebalancer(**values: object) -> PortfolioRebalance:
    strategy = PortfolioRebalance(values)
    strategy.bind_pairs(["BTC/USD", "ETH/USD"])
    return strategy


def plain(orders: list[PlannedOrder]) -> list[tuple[str, OrderSide, Decimal]]:
    return [(o.pair, o.side, o.qty) for o in orders]


def test_a_rebalance_worked_out_by_hand() -> None:
    # Targets 50 % BTC, 30 % ETH, so 20 % cash. Held: 0.123 BTC at 51,234.5 = 6,301.8435 and 0.75 ETH at 2,471.3 =
    # 1,853.475; cash 1,844.6815: equity 10,000 exactly. Weights 63.02 %, 18.53 %, 18.45 %: BTC and ETH are more
    # than 5 points off.
    prices = {"BTC/USD": D("51234.5"), "ETH/USD": D("2471.3")}
    holdings = {"BTC/USD": D("0.123"), "ETH/USD": D("0.75")}
    the_book = book(holdings, D("1844.6815"), prices)
    assert the_book.equity == D(10000)
    got = rebalancer(weight_1="0.5", weight_2="0.3", band_pct=5).decide(the_book)
    # BTC: 5,000 - 6,301.8435 = -1,301.8435 -> sell 1,301.8435 / 51,234.5 = 0.025409... -> 0.02540950 (8 decimals,
    # rounded down). ETH: 3,000 - 1,853.475 = 1,146.525 -> buy 1,146.525 / 2,471.3 = 0.46394... -> 0.4639 (4
    # decimals); it costs 1,146.525 x 1.004 = 1,151.111 with its fee: the cash covers it, nothing is scaled.
    sell_btc = (D("1301.8435") / D("51234.5")).quantize(D("0.00000001"), rounding=ROUND_DOWN)
    buy_eth = (D("1146.525") / D("2471.3")).quantize(D("0.0001"), rounding=ROUND_DOWN)
    assert (sell_btc, buy_eth) == (D("0.02540950"), D("0.4639"))
    assert plain(got) == [("BTC/USD", SELL, sell_btc), ("ETH/USD", BUY, buy_eth)]
    assert "63.02% of equity, target 50.00%" in got[0].reason


def test_nothing_is_traded_inside_the_band_nor_on_its_edge() -> None:
    strategy = rebalancer(weight_1="0.5", weight_2="0.3", band_pct=5)
    # 54 % BTC, 26 % ETH, 20 % cash: 4 points at most.
    assert strategy.decide(book({"BTC/USD": D("0.108"), "ETH/USD": D("1.04")}, D(2000))) == []
    # 55 % BTC, 25 % ETH: exactly 5 points off, which is not beyond the band.
    assert strategy.decide(book({"BTC/USD": D("0.11"), "ETH/USD": D(1)}, D(2000))) == []
    # 55.5 % BTC, 24.5 % ETH: beyond it.
    assert plain(strategy.decide(book({"BTC/USD": D("0.111"), "ETH/USD": D("0.98")}, D(2000)))) == [
        ("BTC/USD", SELL, D("0.011")),
        ("ETH/USD", BUY, D("0.22")),
    ]


def test_a_drift_whose_fees_exceed_what_lies_beyond_the_band_is_not_traded() -> None:
    strategy = PortfolioRebalance({"weight_1": "0.5", "band_pct": 5})
    strategy.bind_pairs(["BTC/USD"])
    # 55.01 % BTC (0.11002 at 50,000 = 5,501 of 10,000): 0.01 point beyond the band, 1 USD of equity. Selling back
    # to 50 % is 0.01002 BTC = 501 USD, whose 0.40 % fee is 2.004 USD > 1: skipped.
    assert strategy.decide(book({"BTC/USD": D("0.11002")}, D(4499))) == []
    # 55.1 %: 10 USD beyond the band; the sale of 0.0102 BTC (510 USD) costs 2.04 in fees < 10: traded.
    assert plain(strategy.decide(book({"BTC/USD": D("0.1102")}, D(4490)))) == [("BTC/USD", SELL, D("0.0102"))]
    # The same 55.1 % with a 2.5 % taker fee: 12.75 USD of fees > 10: skipped.
    dear = {"BTC/USD": instrument("BTC/USD", 8, "0.0001", taker_pct="2.5")}
    assert strategy.decide(book({"BTC/USD": D("0.1102")}, D(4490), instruments=dear)) == []


def test_cash_has_a_target_of_its_own() -> None:
    # 40 % / 40 % / 20 % cash; both pairs rose to 43 % each (inside the band), so cash is 14 %: 6 points short.
    # Both are sold back to 40 %: 300 USD of each.
    got = rebalancer(weight_1="0.4", weight_2="0.4").decide(
        book({"BTC/USD": D("0.086"), "ETH/USD": D("1.72")}, D(1400))
    )
    assert plain(got) == [("BTC/USD", SELL, D("0.006")), ("ETH/USD", SELL, D("0.12"))]
    # All in cash with a 100 % cash target (every weight 0): nothing to do; holding some with that target sells it.
    assert rebalancer().decide(book({"BTC/USD": D(0), "ETH/USD": D(0)}, D(10000))) == []
    assert plain(rebalancer().decide(book({"BTC/USD": D("0.05"), "ETH/USD": D(0)}, D(7500)))) == [
        ("BTC/USD", SELL, D("0.05"))
    ]


def test_buys_fit_the_cash_and_the_limits_and_sales_never_exceed_the_holdings() -> None:
    strategy = rebalancer(weight_1="0.5", weight_2="0.5")
    # Everything in cash, 10,000 USD, but only 4,000 may be spent (the rest held by open buys, say): the two buys of
    # 5,000 need 10,040 with fees and are scaled by 4,000 / 10,040 alike.
    the_book = book({"BTC/USD": D(0), "ETH/USD": D(0)}, D(10000))
    short = replace(the_book, cash=D(4000))
    scale = D(4000) / D(10040)
    btc = (D(5000) * scale / D(50000)).quantize(D("0.00000001"), rounding=ROUND_DOWN)
    eth = (D(5000) * scale / D(2500)).quantize(D("0.0001"), rounding=ROUND_DOWN)
    assert plain(strategy.decide(short)) == [("BTC/USD", BUY, btc), ("ETH/USD", BUY, eth)]
    assert btc * 50000 * D("1.004") + eth * 2500 * D("1.004") <= 4000
    # Per pair: what the risk limits allow (600 USD of ETH); max_order_qty (0.05, in base units of any pair).
    limited = book({"BTC/USD": D(0), "ETH/USD": D(0)}, D(10000), buy_limits={"BTC/USD": BIG, "ETH/USD": D(600)})
    assert plain(strategy.decide(limited)) == [("BTC/USD", BUY, D("0.1")), ("ETH/USD", BUY, D("0.24"))]
    limited = replace(limited, max_order_qty=D("0.05"))
    assert plain(strategy.decide(limited)) == [("BTC/USD", BUY, D("0.05")), ("ETH/USD", BUY, D("0.05"))]
    # max_total_notional leaves 1,000 USD for both: 500 each.
    capped = book({"BTC/USD": D(0), "ETH/USD": D(0)}, D(10000), total_buy_limit=D(1000))
    assert plain(strategy.decide(capped)) == [("BTC/USD", BUY, D("0.01")), ("ETH/USD", BUY, D("0.2"))]
    # A target of 0 sells exactly what is held (spot: never more); an order under Kraken's minimum is left out
    # (0.0099 ETH < 0.01).
    got = rebalancer(weight_1="0", weight_2="0.5").decide(
        book({"BTC/USD": D("0.0123"), "ETH/USD": D("1.9901")}, D(4409.75))
    )
    assert plain(got) == [("BTC/USD", SELL, D("0.0123"))]


def test_a_pair_without_a_price_means_no_rebalance() -> None:
    strategy = rebalancer(weight_1="0.5", weight_2="0.5")
    assert strategy.decide(book({"BTC/USD": D(0), "ETH/USD": D(0)}, D(10000), {"BTC/USD": D(50000)})) == []
    prices = {"BTC/USD": D(50000), "ETH/USD": D(0)}
    assert strategy.decide(book({"BTC/USD": D(0), "ETH/USD": D(0)}, D(10000), prices)) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"weight_1": "0.6", "weight_2": "0.5"}, r"the target weights add up to 1.1, more than 1"),
        ({"weight_1": "-0.1"}, r"weight_1: -0.1 is below the minimum 0"),
        ({"weight_1": "1.01"}, r"weight_1: 1.01 is above the maximum 1"),
        ({"band_pct": "0.09"}, r"band_pct: 0.09 is below the minimum 0.1"),
        ({"band_pct": "50.1"}, r"band_pct: 50.1 is above the maximum 50"),
        ({"stop_loss_pct": "5"}, r"stop_loss_pct does not apply to portfolio_rebalance"),
        ({"entry_limit_bps": "0"}, r"entry_limit_bps does not apply to portfolio_rebalance"),
    ],
)
def test_parameters_are_refused_at_their_edges(values: dict[str, object], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        PortfolioRebalance(values)


def test_parameters_at_their_edges_are_taken() -> None:
    assert PortfolioRebalance({"weight_1": "1", "band_pct": "0.1"}).values["weight_1"] == 1
    assert PortfolioRebalance({"weight_1": "0.5", "weight_8": "0.5", "band_pct": "50"}).values["band_pct"] == 50
    assert strategy_class("portfolio_rebalance") is PortfolioRebalance


def test_a_weight_for_a_pair_not_listed_is_refused_at_tuning_and_nothing_changes() -> None:
    strategy = rebalancer(weight_1="0.5", weight_2="0.3")
    with pytest.raises(ParamError, match=r"weight_3 = 0.2 names no pair: pairs lists 2 \(BTC/USD, ETH/USD\)"):
        strategy.retune({"weight_3": "0.2"})
    assert (strategy.values["weight_1"], strategy.values["weight_3"]) == (D("0.5"), 0)
    strategy.retune({"weight_2": "0.5"})
    assert strategy.targets() == {"BTC/USD": D("0.5"), "ETH/USD": D("0.5")}


def rebalance_config(params: dict[str, object], pairs: list[str], **extra: object) -> dict[str, object]:
    return {"strategies": [{"name": "core", "kind": "portfolio_rebalance", "pairs": pairs, "params": params, **extra}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (rebalance_config({"weight_1": "0.7", "weight_2": "0.4"}, ["XBTUSD", "ETHUSD"]), r"add up to 1.1, more than 1"),
        (rebalance_config({"weight_2": "-0.2"}, ["XBTUSD", "ETHUSD"]), r"weight_2: -0.2 is below the minimum 0"),
        (
            rebalance_config({"weight_1": "0.3", "weight_3": "0.3"}, ["XBTUSD", "ETHUSD"]),
            r"strategy 'core': weight_3 = 0.3 names no pair: pairs lists 2 \(BTC/USD, ETH/USD\)",
        ),
        (rebalance_config({}, ["XBTUSD", "ETHXBT"]), r"ETH/BTC not quoted in the account currency USD"),
        (rebalance_config({}, ["XBTUSD", "xbt/usd"]), r"pairs lists BTC/USD more than once"),
        (rebalance_config({}, ["XBTUSD", "ETHUSD"], pair="ETHUSD"), r"pair ETH/USD must be the first of pairs"),
        (rebalance_config({}, ["XBTUSD", "ETHUSD"], group="g"), r"it cannot vote in a group"),
        (
            {"strategies": [{"name": "e", "kind": "ema_cross", "pairs": ["XBTUSD", "ETHUSD"]}]},
            r"ema_cross trades one pair: `pairs` is for strategies over several pairs",
        ),
    ],
)
def test_bad_weights_and_pairs_are_configuration_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)


def test_a_good_configuration_takes_the_first_pair_as_its_pair() -> None:
    config = config_from_mapping(rebalance_config({"weight_1": "0.5", "weight_2": "0.5"}, ["xbtusd", "ETH/USD"]))
    (strategy,) = config.strategies
    assert (strategy.pair, strategy.traded_pairs) == ("BTC/USD", ("BTC/USD", "ETH/USD"))


def test_a_backtest_on_the_shipped_sample_trades(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Half the account in BTC, half in USDT, rebalanced when a weight is 0.2 point off: the first candle buys half,
    # and the sample's moves later take the weight out of the band both ways.
    result = backtest_json("portfolio_rebalance", usdt_config(tmp_path), capsys, "weight_1=0.5", "band_pct=0.2")
    fills = result["fills"]
    assert [f["side"] for f in fills][:1] == ["buy"] and {"buy", "sell"} <= {f["side"] for f in fills}
    # The first candle's decision buys half the 10,000 USDT's worth at its close, rounded down to 8 decimals.
    first_close = shipped_candles()[0].close
    assert D(fills[0]["qty"]) == (D(5000) / first_close).quantize(D("0.00000001"), rounding=ROUND_DOWN)
    assert result["refusals"]["total"] == 0


def test_trading_mcp_strategies_lists_it_with_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["strategies", "--json"]) == 0
    listed = {s["kind"]: s for s in json.loads(capsys.readouterr().out)["strategies"]}
    entry = listed["portfolio_rebalance"]
    assert entry["source"] == "built-in" and entry["description"].startswith("Spot only")
    params = {p["name"]: p for p in entry["params"]}
    assert list(params) == [f"weight_{k}" for k in range(1, 9)] + ["band_pct"]
    assert {k: params["weight_2"][k] for k in ("type", "minimum", "maximum", "default")} == {
        "type": "decimal",
        "minimum": "0",
        "maximum": "1",
        "default": "0",
    }
    assert (params["band_pct"]["minimum"], params["band_pct"]["maximum"], params["band_pct"]["default"]) == (
        "0.1",
        "50",
        "5",
    )
    capsys.readouterr()
    assert main(["strategies"]) == 0
    assert "portfolio_rebalance" in capsys.readouterr().out
