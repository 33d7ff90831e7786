"""Parameter values given as text are plain ASCII decimals: anything Python's Decimal would also take (spaces,
underscores, exponents, other scripts' digits) is refused with the parameter's name."""

from decimal import Decimal

import pytest

from engine.strategies import ParamError, strategy_class

EMA = strategy_class("ema_cross")
MR = strategy_class("mean_reversion")


@pytest.mark.parametrize("text", [" 5", "5 ", "1_0", "1e1", "٥", "５", "+5", "5.", ".5", "NaN", "Infinity", ""])
def test_text_that_is_not_a_plain_decimal_is_refused(text: str) -> None:
    with pytest.raises(ParamError, match=r"fast: .* is not a plain decimal number"):
        EMA.validate({"fast": text}, base=None)


def test_plain_decimals_are_taken_in_the_declared_type() -> None:
    values = EMA.validate({"fast": "7", "slow": 30}, base=None)
    assert (values["fast"], values["slow"]) == (7, 30)
    assert type(values["fast"]) is int and type(values["stop_loss_pct"]) is Decimal
    assert str(MR.validate({"entry_z": "2.50"}, base=None)["entry_z"]) == "2.50"
    assert str(MR.validate({"exit_z": "-0.5"}, base=None)["exit_z"]) == "-0.5"
