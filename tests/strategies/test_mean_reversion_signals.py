"""MeanReversion signals where the plain rule says, on a fixed series: the z-score of the close against the mean and
population standard deviation of the last ``period`` closes (computed here with floats, independently of the
engine's Decimal Bollinger bands); buy when flat and z <= -entry_z; when holding, sell when z >= -exit_z (reverted)
or z <= -stop_z (stopped)."""

import math
from decimal import Decimal

import pytest

from engine.domain.market_data import Candle
from engine.strategies import MeanReversion, ParamError, StrategyContext

CLOSES = [
    *(100, 101, 100, 102, 101, 100, 101, 102, 100, 101),
    *(96, 97, 101, 102, 101, 100, 101, 99, 100, 101),
    *(95, 93, 90, 88, 95, 100, 101, 102, 100, 101),
    *(103, 102, 101, 100, 99, 100, 94, 96, 100),
]


def plain_signals(period: int, entry_z: float, exit_z: float, stop_z: float) -> tuple[list[str | None], float]:
    """The expected signal per candle (fills assumed immediate), and how close any z came to a threshold."""
    out: list[str | None] = []
    margin = math.inf
    held = False
    for i, close in enumerate(CLOSES):
        window = CLOSES[max(0, i - period + 1) : i + 1]
        signal = None
        if len(window) == period:
            mean = math.fsum(window) / period
            sd = math.sqrt(math.fsum((x - mean) ** 2 for x in window) / period)
            if sd > 0:
                z = (close - mean) / sd
                margin = min(margin, *(abs(z - t) for t in (-entry_z, -exit_z, -stop_z)))
                if not held and z <= -entry_z:
                    signal, held = "buy", True
                elif held and z >= -exit_z:
                    signal, held = "sell: reverted", False
                elif held and z <= -stop_z:
                    signal, held = "sell: stop", False
        out.append(signal)
    return out, margin


@pytest.mark.parametrize(
    ("period", "entry_z", "exit_z", "stop_z"),
    [(10, "1.5", "0", "2.5"), (10, "1.5", "-0.5", "2.5"), (8, "1.2", "0.3", "2")],
)
@pytest.mark.parametrize("retuned", [False, True], ids=["built", "retuned"])
def test_signals_match_the_plain_z_score_rule(
    period: int, entry_z: str, exit_z: str, stop_z: str, retuned: bool
) -> None:
    values = {"period": period, "entry_z": entry_z, "exit_z": exit_z, "stop_z": stop_z}
    if retuned:  # built with other thresholds, then retuned: the new ones apply, none of the old
        strategy = MeanReversion({"period": 12, "entry_z": "3", "exit_z": "1", "stop_z": "6"})
        strategy.retune(values)
    else:
        strategy = MeanReversion(values)
    expected, margin = plain_signals(period, float(entry_z), float(exit_z), float(stop_z))
    assert margin > 1e-6  # no z-score near a threshold: float and Decimal arithmetic must agree on every side
    got: list[str | None] = []
    qty = Decimal(0)
    for i, close in enumerate(CLOSES):
        price = Decimal(close)
        signal = strategy.on_candle(
            Candle("BTC/USD", i, 60, price, price, price, price, Decimal(1)), StrategyContext(qty)
        )
        if signal is None:
            got.append(None)
            continue
        qty = Decimal(1) if signal.side == "buy" else Decimal(0)
        got.append("buy" if signal.side == "buy" else "sell: stop" if "stop" in signal.reason else "sell: reverted")
    assert got == expected
    assert {"buy", "sell: reverted"} <= set(expected)


def test_the_series_exercises_the_stop() -> None:
    expected, _ = plain_signals(10, 1.5, 0, 2.5)
    assert [(i, s) for i, s in enumerate(expected) if s] == [
        (10, "buy"),
        (12, "sell: reverted"),
        (20, "buy"),
        (25, "sell: reverted"),
        (34, "buy"),
        (36, "sell: stop"),
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"period": 4}, r"^period: 4 is below the minimum 5$"),
        ({"entry_z": "5.1"}, r"^entry_z: 5.1 is above the maximum 5$"),
        ({"entry_z": "2", "exit_z": "2"}, r"^exit_z \(2\) must be smaller than entry_z \(2\)$"),
        ({"entry_z": "3", "stop_z": "3"}, r"^stop_z \(3\) must exceed entry_z \(3\)$"),
    ],
)
def test_parameters_are_refused_at_their_edges(values: dict[str, object], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        MeanReversion.validate(values, base=None)


def test_parameters_at_their_edges_are_taken() -> None:
    assert MeanReversion.validate({"period": 5, "entry_z": "0.5", "exit_z": "-3", "stop_z": "1"}, base=None)
    assert MeanReversion.validate({"period": 1000, "entry_z": "5", "exit_z": "3", "stop_z": "10"}, base=None)
