"""Strategies and their declared, tunable parameters.

A strategy declares its parameters (:class:`Param`: name, type, bounds, default, description) so that anything
tuning it, from a TOML file to an LLM over MCP, is validated against one schema. A strategy sees closed candles of
one pair and answers with a :class:`Signal` or nothing; sizing, risk and execution happen downstream.

Several timeframes: a strategy that also wants longer candles (a 1 h trend over 5 min entries) names their intervals
in :attr:`Strategy.timeframes` (or derives them from its parameters in :meth:`Strategy.timeframes_for`); the engine
builds them from the base feed (:mod:`engine.market.higher_candles`) and hands each one, once closed, to
:meth:`Strategy.on_higher_candle`, just before :meth:`Strategy.on_candle` of the base candle that closed it.

The L2 book: a strategy that overrides :meth:`Strategy.on_book` is also handed every :class:`BookSnapshot` of its
pair and answers with :class:`Quote` values, post-only limit orders with a time-to-live that the engine quantises,
checks and sends (:mod:`engine.runtime.book_quotes`). Strategies that do not override it cost nothing per book event.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Literal

from engine.domain.market_data import BookSnapshot, Candle

__all__ = ["BookContext", "Param", "ParamError", "ParamValue", "Quote", "Signal", "Strategy", "StrategyContext"]

ParamValue = int | Decimal | bool
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


class ParamError(ValueError):
    """A parameter value is unknown, of the wrong type or out of its declared range."""


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter. ``kind`` is ``int``, ``decimal`` or ``bool``; bounds are inclusive."""

    name: str
    kind: Literal["int", "decimal", "bool"]
    default: ParamValue
    minimum: ParamValue | None = None
    maximum: ParamValue | None = None
    description: str = ""

    def coerce(self, value: object) -> ParamValue:
        """Check ``value`` against this declaration and return it in the declared type.

        Accepts ints, Decimals and plain ASCII decimal strings (``-12.5``: as TOML, JSON and the command line give
        them); refuses other text (spaces, ``1_000``, exponents, non-ASCII digits), floats that are not whole for
        ``int``, NaN, infinities, booleans where numbers are expected, and values out of range.

        Raises:
            ParamError: with a message naming the parameter and the rule broken.
        """
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ParamError(f"{self.name}: expected true or false, got {value!r}")
        if isinstance(value, bool) or value is None:
            raise ParamError(f"{self.name}: expected a number, got {value!r}")
        if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
            # Python's Decimal also takes " 5 ", "1_000", "1e3" and non-ASCII digits ("٥", "５"): a person or a
            # client that sent those meant something we should not guess.
            raise ParamError(f"{self.name}: {value[:40]!r} is not a plain decimal number (digits, one optional '.')")
        try:
            number = Decimal(str(value)) if isinstance(value, int | str | float | Decimal) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise ParamError(f"{self.name}: expected a finite number, got {value!r}")
        result: ParamValue
        if self.kind == "int":
            if number != number.to_integral_value():
                raise ParamError(f"{self.name}: expected a whole number, got {value!r}")
            result = int(number)
        else:
            result = number
        if self.minimum is not None and result < self.minimum:
            raise ParamError(f"{self.name}: {value} is below the minimum {self.minimum}")
        if self.maximum is not None and result > self.maximum:
            raise ParamError(f"{self.name}: {value} is above the maximum {self.maximum}")
        return result


@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants: ``buy`` opens (or adds to) a long, ``sell`` closes the whole position."""

    side: Literal["buy", "sell"]
    reason: str = ""


@dataclass(slots=True)
class StrategyContext:
    """What a strategy may know besides market data: its own position in its pair."""

    position_qty: Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """A book strategy's order: post-only (maker or nothing), a limit at ``price``, ``qty`` base units, expiring
    ``ttl_ns`` after it is sent. Raw values: the engine rounds the price to the tick away from the other side of
    the book (a buy down, a sell up) and the quantity down to the lot before risk checks it."""

    side: Literal["buy", "sell"]
    price: Decimal
    qty: Decimal
    ttl_ns: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BookContext:
    """What a book strategy may know besides the book: its own position and open orders in its pair, what one
    buy may spend and the pair's order minimum.

    Attributes:
        position_qty: the position held, in base units (dust below ``min_qty`` included).
        open_buy_qty: the remaining quantity of its open buys; open_sell_qty: of its open sells.
        budget_quote: what one buy may spend, in the pair's quote asset (its ``order_quote_amount`` × weight).
        min_qty: the pair's smallest order (Kraken's ``ordermin``), in base units.
    """

    position_qty: Decimal
    open_buy_qty: Decimal
    open_sell_qty: Decimal
    budget_quote: Decimal
    min_qty: Decimal


class Strategy(ABC):
    """Base class: subclasses set ``kind``, ``description`` and ``params``, and implement :meth:`on_candle`."""

    kind: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    """Every parameter: the strategy's own, then those every strategy has (guards, sizing, entry orders)."""
    own_params: ClassVar[tuple[Param, ...]]
    """The strategy's own parameters only (what its ``params`` declared)."""
    timeframes: ClassVar[tuple[int, ...]] = ()
    """Intervals in seconds of the higher candles the strategy wants besides its base candles (``(3600,)`` for
    1 h); each must be a multiple of the base interval, which the configuration checks. Empty: none (and nothing
    is spent on them per candle)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "params" in cls.__dict__:
            from engine.strategies.common_params import COMMON_PARAMS

            own = tuple(p for p in cls.params if p.name not in {c.name for c in COMMON_PARAMS})
            cls.own_params = own
            cls.params = own + COMMON_PARAMS

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        self.values: dict[str, ParamValue] = self.validate(values or {}, base=None)
        self.reset()

    @classmethod
    def param(cls, name: str) -> Param:
        for declared in cls.params:
            if declared.name == name:
                return declared
        known = ", ".join(p.name for p in cls.params)
        raise ParamError(f"unknown parameter {name!r} for {cls.kind} (known: {known})")

    @classmethod
    def validate(cls, values: Mapping[str, object], base: Mapping[str, ParamValue] | None) -> dict[str, ParamValue]:
        """Merge ``values`` over ``base`` (or the defaults) and check every rule, including cross-field ones.

        Raises:
            ParamError: on an unknown name, a bad value, or a combination the strategy refuses.
        """
        merged: dict[str, ParamValue] = dict(base) if base is not None else {p.name: p.default for p in cls.params}
        for name, value in values.items():
            merged[name] = cls.param(name).coerce(value)
        cls.check_combination(merged)
        return merged

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        """Cross-parameter rules (override). Raises ParamError."""
        return None

    def shown_values(self) -> dict[str, ParamValue]:
        """The values worth showing a person: the strategy's own, and the common ones (guards, sizing, entry
        orders) only where they differ from their defaults."""
        own = {p.name for p in self.own_params}
        defaults = {p.name: p.default for p in self.params}
        return {k: v for k, v in self.values.items() if k in own or v != defaults.get(k)}

    def retune(self, values: Mapping[str, object]) -> dict[str, ParamValue]:
        """Apply new values (validated first; nothing changes on error) and return them."""
        merged = self.validate(values, base=self.values)
        self.values = merged
        self.reset()
        return merged

    @classmethod
    def timeframes_for(cls, values: Mapping[str, ParamValue]) -> tuple[int, ...]:
        """The higher intervals (seconds) wanted with these parameter values: :attr:`timeframes` unless overridden
        (a strategy whose trend interval is a parameter returns it here)."""
        return cls.timeframes

    @property
    def warmup(self) -> int:
        """How many candles the strategy needs before it can signal."""
        return 0

    @abstractmethod
    def reset(self) -> None:
        """(Re)build indicators from the current values."""

    @abstractmethod
    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        """React to a closed candle."""

    def on_book(self, book: BookSnapshot, ctx: BookContext) -> tuple[Quote, ...]:
        """Answer a book snapshot of the strategy's pair with the orders to post now (override; the default is
        never called: the engine hands book snapshots only to strategies that override it, see
        :meth:`uses_book`)."""
        return ()

    @classmethod
    def uses_book(cls) -> bool:
        """Whether the strategy trades on the L2 book (it overrides :meth:`on_book`)."""
        return cls.on_book is not Strategy.on_book

    def on_higher_candle(self, candle: Candle, ctx: StrategyContext) -> None:
        """Take a closed candle of one of the declared timeframes (``candle.interval_s`` says which); the default
        ignores it.

        Called just before :meth:`on_candle` of the base candle whose close ends the higher candle's period (after
        a gap in the base feed: of the first base candle after that period), never for a period still forming;
        when several close together, the shorter interval comes first. Decisions are made in :meth:`on_candle`.
        """
        return None
