"""Pre-trade checks, run before every order, and the trading state they guard.

Every check is pure: it is handed the order, the instrument and a snapshot of exposure, and answers with the
reason to refuse (a :class:`Refusal`: the rule and a sentence) or ``None``.

Kraken's own rules come first, as Kraken applies them: volume precision and ``ordermin`` always; the tick only
for a limit price (a market order carries no price to tick-check); ``costmin`` at the limit price, or for a
market order at the reference price rounded to the tick (what the simulated venue checks too). Exits, orders
that only reduce a long (sells within the position), are then refused only for lacking the asset: never by a
size, notional, exposure or open-order limit, which must not trap a position. An exit Kraken itself would refuse
(a dust remainder below ``ordermin``) is refused with Kraken's error and says so.

Two limits look at more than one order. ``max_orders_per_minute`` refuses an entry when that many orders were
accepted in the 60 seconds before it (an order's own ``ts_ns``: market time in a replay, wall time live; an order
at exactly 60 s before is out of the window). Exits are never throttled but count, and only accepted orders count.
The window lives here, in memory, and is not saved: after a restart it starts empty. ``price_band_pct`` refuses a
limit order priced on the fat-finger side of the pair's mark by more than the band (a buy above
``mark × (1 + band/100)``, a sell below ``mark × (1 - band/100)``), exits included; a market order carries no price
and is never band-checked, so a market exit is never blocked by it. The band is checked only when the caller
gives the mark (``assess(..., mark=...)``); with no mark it is not checked. A caller that knows the pair has no
mark yet asks :meth:`RiskEngine.refuse_unmarked` first (the manual orders do): a band that cannot be measured is
not assumed met, unless it is off (unbounded).

The notional limits are amounts in the account currency. An order's notional (``qty × price``) is in its pair's
quote asset; for a pair quoted in the account currency it is compared as it is, otherwise it is converted with the
snapshot's ``quote_rate`` first. A buy is refused when any of it cannot be valued (the order's own quote asset, or
exposure already held or pending in a pair whose quote asset has no price yet): a cap that cannot be measured must
not be assumed met. The balance check stays in the pair's quote asset, like with like.

States: ``active`` (trading), ``paused`` (strategies' new orders refused; a person or the MCP client paused),
``halted`` (the emergency-stop latch: everything refused until an explicit resume), ``reducing`` (exits only:
an account rule, ``reduce_at_drawdown_pct``, refuses buys; sells go through the usual checks).
"""

from bisect import bisect_right, insort
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import ValidationError

from engine.domain.instrument import ERR_COST_MIN, ERR_ORDER_MIN, ERR_TICK_SIZE, Instrument
from engine.domain.orders import OrderSide, OrderType
from engine.errors import InvalidRequest, LimitExceeded
from engine.exchanges.port import OrderRequest
from engine.risk.limits import RiskLimits

__all__ = [
    "RULE_EXPOSURE_UNVALUED",
    "RULE_INSUFFICIENT_FUNDS",
    "RULE_ORDERS_PER_MINUTE",
    "RULE_PRICE_BAND",
    "RULE_REDUCING",
    "RULE_TRADING_STATE",
    "ExposureSnapshot",
    "Refusal",
    "RiskEngine",
    "TradingState",
]

RULE_TRADING_STATE = "trading_state"
RULE_INSUFFICIENT_FUNDS = "insufficient_funds"
RULE_EXPOSURE_UNVALUED = "exposure_unvalued"
RULE_REDUCING = "reduce_at_drawdown_pct"  # the account rule that put the engine in REDUCING
RULE_ORDERS_PER_MINUTE = "max_orders_per_minute"
RULE_PRICE_BAND = "price_band_pct"
THROTTLE_WINDOW_NS = 60 * 1_000_000_000
_HUNDRED = Decimal(100)
# The limits' rules are the limits' names (max_order_qty, ...); Kraken's are its error strings (EOrder:...).


class TradingState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    HALTED = "halted"
    REDUCING = "reducing"


@dataclass(frozen=True, slots=True)
class ExposureSnapshot:
    """Exposure before the order.

    Attributes:
        pair_notional: the order's pair (positions at mark plus open buys), in the account currency.
        total_notional: every pair likewise, in the account currency (what could not be valued is left out and
            named in ``unvalued``).
        open_orders: open orders of every pair.
        available_quote: the pair's quote asset free for a buy, in that asset (not converted).
        available_base: the pair's base asset the strategy may sell, in that asset.
        position_qty: the strategy's position in the pair, in base units.
        account_currency: the currency of the notionals and of the notional limits.
        quote_rate: the value of one unit of the pair's quote asset in the account currency at current marks;
            None when the pair is quoted in the account currency (no conversion) or when it cannot be valued.
            Exact for a direct path (the rate is the mark); through a division or two hops, ``notional × rate``
            may differ from valuing ``notional`` itself in the 28th significant digit, which no cap notices.
        unvalued: why some of the exposure (the order's quote asset, or a pair already held or bought) cannot be
            valued in the account currency now, naming the missing price; empty when everything can be.
    """

    pair_notional: Decimal
    total_notional: Decimal
    open_orders: int
    available_quote: Decimal
    available_base: Decimal
    position_qty: Decimal
    account_currency: str
    quote_rate: Decimal | None
    unvalued: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an order may not go: ``rule``, a short stable name to count by (a limit's name such as
    ``max_order_qty``, Kraken's error string such as ``EOrder:Order minimum not met``, ``insufficient_funds``,
    ``exposure_unvalued`` or ``trading_state``), and ``reason``, the sentence a person reads."""

    rule: str
    reason: str


class RiskEngine:
    """The limits in force, the caps they may never exceed, and the trading state."""

    def __init__(self, limits: RiskLimits, caps: RiskLimits) -> None:
        self.limits = limits
        self.caps = caps
        self.state = TradingState.ACTIVE
        self.halt_reason = ""
        # Who stopped trading: "operator" (the operator's shell: trading-mcp halt) or "client" (the MCP client).
        # Only the operator lifts the operator's stop (see EngineFacade.resume).
        self.halted_by: Literal["operator", "client"] = "client"
        self.refusals = 0
        # Times (ts_ns) of the orders accepted in the last THROTTLE_WINDOW_NS, oldest first (not saved).
        self._accepted: deque[int] = deque()

    @property
    def may_trade(self) -> bool:
        """Whether orders may be sent at all (active, or reducing: exits only)."""
        return self.state is TradingState.ACTIVE or self.state is TradingState.REDUCING

    def check(
        self,
        request: OrderRequest,
        instrument: Instrument,
        ref_price: Decimal,
        exposure: ExposureSnapshot,
        *,
        mark: Decimal | None = None,
    ) -> str | None:
        """Why ``request`` must not be sent, or ``None`` when it may go (see :meth:`assess`)."""
        refusal = self.assess(request, instrument, ref_price, exposure, mark=mark)
        return None if refusal is None else refusal.reason

    def assess(
        self,
        request: OrderRequest,
        instrument: Instrument,
        ref_price: Decimal,
        exposure: ExposureSnapshot,
        *,
        mark: Decimal | None = None,
    ) -> Refusal | None:
        """The :class:`Refusal` of ``request`` (its rule and reason), or ``None`` when it may go.

        ``ref_price`` is the price a market order is valued at (the decision candle's close, the mark); a limit
        order is valued at its limit. ``mark`` is the pair's last mark, which a limit price is held to
        ``price_band_pct`` of; when it is None the price band is not checked. An accepted order counts in the
        ``max_orders_per_minute`` window at its ``ts_ns``.

        Raises:
            InvalidRequest: ``mark`` is not positive (nothing is counted or changed).
        """
        if mark is not None and (not mark.is_finite() or mark <= 0):
            raise InvalidRequest(f"the mark must be a positive price, got {mark}")
        refusal = self._check(request, instrument, ref_price, exposure, mark)
        if refusal is None:
            self._count(request.ts_ns)
        else:
            self.refusals += 1
        return refusal

    def refuse_unmarked(self, request: OrderRequest) -> Refusal | None:
        """The refusal of a limit order for a pair with no mark yet, when a price band is in force: the band
        cannot be measured, so it is not assumed met (counted as a refusal); None for a market order or when
        ``price_band_pct`` is off (unbounded). For callers that know the mark is missing (manual orders)."""
        limits = self.limits
        if request.limit_price is None or request.order_type is OrderType.MARKET or limits.band_unbounded:
            return None
        self.refusals += 1
        return Refusal(
            RULE_PRICE_BAND,
            f"no mark known yet for {request.pair}: the limit price {request.limit_price} cannot be held to "
            f"price_band_pct {_plain(limits.price_band_pct)}%",
        )

    def orders_in_window(self, now_ns: int) -> int:
        """How many accepted orders the ``max_orders_per_minute`` window at ``now_ns`` holds (read only)."""
        accepted = self._accepted
        return len(accepted) - bisect_right(accepted, now_ns - THROTTLE_WINDOW_NS)

    def _count(self, ts_ns: int) -> None:
        accepted = self._accepted
        horizon = ts_ns - THROTTLE_WINDOW_NS
        while accepted and accepted[0] <= horizon:
            accepted.popleft()
        if not accepted or ts_ns >= accepted[-1]:
            accepted.append(ts_ns)
        else:  # a clock that stepped back: kept in order (the window then counts what follows, conservatively)
            insort(accepted, ts_ns)

    def _check(
        self,
        request: OrderRequest,
        instrument: Instrument,
        ref_price: Decimal,
        exposure: ExposureSnapshot,
        mark: Decimal | None,
    ) -> Refusal | None:
        if self.state is not TradingState.ACTIVE:
            if self.state is TradingState.REDUCING:
                if request.side is OrderSide.BUY:
                    why = "trading is reducing (exits only)" + (f": {self.halt_reason}" if self.halt_reason else "")
                    return Refusal(RULE_REDUCING, why)
                return self._check_active(request, instrument, ref_price, exposure, mark)
            why = f"trading is {self.state}" + (f": {self.halt_reason}" if self.halt_reason else "")
            return Refusal(RULE_TRADING_STATE, why)
        return self._check_active(request, instrument, ref_price, exposure, mark)

    def _check_active(
        self,
        request: OrderRequest,
        instrument: Instrument,
        ref_price: Decimal,
        exposure: ExposureSnapshot,
        mark: Decimal | None,
    ) -> Refusal | None:
        limit = request.limit_price
        if limit is not None and request.order_type is not OrderType.MARKET:
            price = limit
            kraken = instrument.check_order(request.qty, limit)
        else:
            # A market order carries no price: never tick-checked. Kraken's cost minimum is checked at the
            # reference price rounded to the tick (the simulated venue's check; a foreign feed may be off it).
            price = ref_price
            kraken = instrument.check_order(request.qty, instrument.round_price(ref_price))
        if request.side is OrderSide.SELL:
            if request.qty > exposure.available_base:
                return Refusal(
                    RULE_INSUFFICIENT_FUNDS,
                    f"insufficient {instrument.base}: selling {request.qty}, {exposure.available_base} available",
                )
            if kraken is not None:
                return Refusal(kraken, _kraken_refuses_sell(kraken, request.qty, price, instrument))
            if mark is not None and limit is not None and request.order_type is not OrderType.MARKET:
                return self._band(request, limit, mark)
            return None
        if kraken is not None:
            return Refusal(kraken, kraken)
        if mark is not None and limit is not None and request.order_type is not OrderType.MARKET:
            band = self._band(request, limit, mark)
            if band is not None:
                return band
        notional = request.qty * price
        limits = self.limits
        if request.qty > limits.max_order_qty:
            return Refusal("max_order_qty", f"order size {request.qty} exceeds max_order_qty {limits.max_order_qty}")
        account = exposure.account_currency
        if exposure.unvalued:
            return Refusal(RULE_EXPOSURE_UNVALUED, f"cannot value the exposure in {account}: {exposure.unvalued}")
        # The notional in the account currency: as it is when the pair is quoted in it (no arithmetic at all).
        if instrument.quote == account:
            value = notional
            detail = ""
        elif exposure.quote_rate is not None:
            value = notional * exposure.quote_rate
            detail = f" {account} ({format(notional.normalize(), 'f')} {instrument.quote})"
        else:
            return Refusal(
                RULE_EXPOSURE_UNVALUED,
                f"cannot value the exposure in {account}: no price for {instrument.quote} in {account}",
            )
        if value > limits.max_order_notional:
            return Refusal(
                "max_order_notional",
                f"order notional {value:.2f}{detail} exceeds max_order_notional {limits.max_order_notional}",
            )
        if exposure.pair_notional + value > limits.max_pair_notional:
            return Refusal(
                "max_pair_notional",
                f"{request.pair} exposure would be {exposure.pair_notional + value:.2f}, "
                f"above max_pair_notional {limits.max_pair_notional}",
            )
        if exposure.total_notional + value > limits.max_total_notional:
            return Refusal(
                "max_total_notional",
                f"total exposure would be {exposure.total_notional + value:.2f}, "
                f"above max_total_notional {limits.max_total_notional}",
            )
        if exposure.open_orders + 1 > limits.max_open_orders:
            return Refusal(
                "max_open_orders", f"{exposure.open_orders} open orders: max_open_orders is {limits.max_open_orders}"
            )
        throttled = self._throttle(request.ts_ns)
        if throttled is not None:
            return throttled
        fee = instrument.fee_rate(maker=False)
        if notional * (1 + fee) > exposure.available_quote:
            return Refusal(
                RULE_INSUFFICIENT_FUNDS,
                f"insufficient {instrument.quote}: order needs {notional * (1 + fee):.2f}, "
                f"{exposure.available_quote:.2f} available",
            )
        return None

    def _band(self, request: OrderRequest, limit: Decimal, mark: Decimal) -> Refusal | None:
        """The ``price_band_pct`` refusal of a limit price on the fat-finger side of ``mark``, or None."""
        band = self.limits.price_band_pct
        if request.side is OrderSide.BUY:
            if limit * _HUNDRED <= mark * (_HUNDRED + band):
                return None
            bound, side, word = mark * (_HUNDRED + band), "buy", "above"
        else:
            if limit * _HUNDRED >= mark * (_HUNDRED - band):
                return None
            bound, side, word = mark * (_HUNDRED - band), "sell", "below"
        off = abs(limit - mark) * _HUNDRED / mark
        return Refusal(
            RULE_PRICE_BAND,
            f"{side} limit {limit} is {off:.2f}% {word} the {request.pair} mark {mark}: price_band_pct is "
            f"{_plain(band)}% (a {side} limit {word} {_plain(bound.scaleb(-2))} is refused)",
        )

    def _throttle(self, ts_ns: int) -> Refusal | None:
        """The ``max_orders_per_minute`` refusal of an entry at ``ts_ns``, or None (drops what left the window)."""
        accepted = self._accepted
        horizon = ts_ns - THROTTLE_WINDOW_NS
        while accepted and accepted[0] <= horizon:
            accepted.popleft()
        most = self.limits.max_orders_per_minute
        count = len(accepted)
        if count < most:
            return None
        # The next entry may go once all but most - 1 of them have left the window.
        wait = Decimal(accepted[count - most] - horizon).scaleb(-9)
        return Refusal(
            RULE_ORDERS_PER_MINUTE,
            f"{count} orders accepted in the last 60 s: max_orders_per_minute is {most} "
            f"(the next entry may go in {wait:.3f} s)",
        )

    def propose_limits(self, changes: Mapping[str, object]) -> RiskLimits:
        """The limits ``changes`` would give, checked against the caps; nothing is applied.

        Raises:
            InvalidRequest: an unknown limit or a bad value.
            LimitExceeded: a value above the operator's cap.
        """
        if not changes:
            raise InvalidRequest("no limits given: name at least one of " + ", ".join(RiskLimits.model_fields))
        unknown = sorted(set(changes) - set(RiskLimits.model_fields))
        if unknown:
            raise InvalidRequest(
                f"unknown risk limit(s) {', '.join(unknown)}; known: {', '.join(RiskLimits.model_fields)}"
            )
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
                raise InvalidRequest(f"{name}: expected a number, got {value!r}")
        merged = {
            **self.limits.model_dump(),
            **{k: (str(v) if isinstance(v, float) else v) for k, v in changes.items()},
        }
        try:
            proposed = RiskLimits.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidRequest(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        for name in changes:
            if getattr(proposed, name) > getattr(self.caps, name):
                raise LimitExceeded(
                    f"{name} {getattr(proposed, name)} is above the operator's cap {getattr(self.caps, name)}"
                )
        return proposed


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _kraken_refuses_sell(error: str, qty: Decimal, price: Decimal, instrument: Instrument) -> str:
    """The reason for refusing a sell that Kraken itself would refuse, saying which of Kraken's rules it breaks."""
    asset = instrument.base
    if error == ERR_ORDER_MIN:
        rule = f"below Kraken's ordermin {instrument.ordermin} {asset} (a dust remainder Kraken would refuse)"
    elif error == ERR_COST_MIN:
        rule = f"worth {qty * price:.8g} {instrument.quote}, below Kraken's costmin {instrument.costmin}"
    elif error == ERR_TICK_SIZE:
        rule = f"limit price {price} is off Kraken's tick {instrument.tick_size}"
    else:
        rule = f"not a volume Kraken accepts for {instrument.pair} ({instrument.lot_decimals} lot decimals)"
    return f"{error}: selling {qty} {asset}, {rule}"
