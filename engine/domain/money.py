"""Decimal money helpers: parsing, quantising and formatting at the edges.

Every amount in the engine is a :class:`decimal.Decimal`. Floats never enter: parsers refuse them, so a float
that slips through is a loud error instead of a silent rounding.
"""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation

__all__ = [
    "ZERO",
    "MoneyError",
    "decimal_places",
    "parse_decimal",
    "quantize",
    "quantum",
    "to_plain_str",
]

ZERO = Decimal(0)


class MoneyError(ValueError):
    """A value could not be read as a finite decimal amount."""


def parse_decimal(value: object, *, field: str = "value") -> Decimal:
    """Read ``value`` (Decimal, int or str) as a finite Decimal.

    Raises:
        MoneyError: for floats, booleans, NaN, infinities and anything unparsable.
    """
    if isinstance(value, bool | float):
        raise MoneyError(f"{field}: {value!r} must be a decimal string or Decimal, not {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation as exc:
            raise MoneyError(f"{field}: {value!r} is not a number") from exc
    else:
        raise MoneyError(f"{field}: {value!r} is not a number")
    if not result.is_finite():
        raise MoneyError(f"{field}: {value!r} is not finite")
    return result


_QUANTA: dict[int, Decimal] = {}


def quantum(decimals: int) -> Decimal:
    """The smallest step with ``decimals`` places: ``quantum(2) == Decimal("0.01")``."""
    # Called on every order (lot steps, price and cost precision): each distinct step is made once.
    step = _QUANTA.get(decimals)
    if step is None:
        if len(_QUANTA) >= 64:
            _QUANTA.clear()
        step = _QUANTA[decimals] = Decimal(1).scaleb(-decimals)
    return step


def quantize(value: Decimal, decimals: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round ``value`` to ``decimals`` places (banker's rounding unless told otherwise)."""
    return value.quantize(quantum(decimals), rounding=rounding)


def decimal_places(value: Decimal) -> int:
    """How many places after the point ``value`` carries once trailing zeros are dropped."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def to_plain_str(value: Decimal) -> str:
    """Format without exponent notation and without trailing zeros ("1E+1" -> "10", "1.50" -> "1.5")."""
    text = format(value.normalize(), "f")
    return text


ROUND_FLOOR_ABS = ROUND_DOWN
ROUND_CEIL_ABS = ROUND_UP
