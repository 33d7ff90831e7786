"""Pre-trade checks, run before every order, and the trading state they guard.

Every check is pure: it is handed the order, the instrument and a snapshot of exposure, and answers with the
reason to refuse (a :class:`Refusal`: the rule and a sentence) or ``None``.

Kraken's own rules come first, as Kraken applies them: volume precision and ``ordermin`` always; the tick only
for a limit price (a market order carries no price to tick-check); ``costmin`` at the limit price, or for a
market order at the reference price rounded to the tick (what the simulated venue checks too). Exits, orders
that only reduce a long (sells within the position), are then refused only for lacking the asset: never by a
size, notional, exposure or open-order limit, which must not trap a position. An exit Kraken itself would refuse
(a dust remainder below ``ordermin``) is refused with Kraken's error and says so.

The notional limits are amounts in the account currency. An order's notional (``qty × price``) is in its pair's
quote asset; for a pair quoted in the account currency it is compared as it is, otherwise it is converted with the
snapshot's ``quote_rate`` first. A buy is refused when any of it cannot be valued (the order's own quote asset, or
exposure already held or pending in a pair whose quote asset has no price yet): a cap that cannot be measured must
not be assumed met. The balance check stays in the pair's quote asset, like with like.

States: ``active`` (trading), ``paused`` (strategies' new orders refused; a person or the MCP client paused),
``halted`` (the emergency-stop latch: everything refused until an explicit resume), ``reducing`` (exits only:
an account rule, ``reduce_at_drawdown_pct``, refuses buys; sells go through the usual checks).
"""

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

    @property
    def may_trade(self) -> bool:
        """Whether orders may be sent at all (active, or reducing: exits only)."""
        return self.state is TradingState.ACTIVE or self.state is TradingState.REDUCING

    def check(
        self, request: OrderRequest, instrument: Instrument, ref_price: Decimal, exposure: ExposureSnapshot
    ) -> str | None:
        """Why ``request`` must not be sent, or ``None`` when it may go."""
        refusal = self.assess(request, instrument, ref_price, exposure)
        return None if refusal is None else refusal.reason

    def assess(
        self, request: OrderRequest, instrument: Instrument, ref_price: Decimal, exposure: ExposureSnapshot
    ) -> Refusal | None:
        """The :class:`Refusal` of ``request`` (its rule and reason), or ``None`` when it may go.

        ``ref_price`` is the price a market order is valued at (the decision candle's close, the mark); a limit
        order is valued at its limit.
        """
        refusal = self._check(request, instrument, ref_price, exposure)
        if refusal is not None:
            self.refusals += 1
        return refusal

    def _check(
        self, request: OrderRequest, instrument: Instrument, ref_price: Decimal, exposure: ExposureSnapshot
    ) -> Refusal | None:
        if self.state is not TradingState.ACTIVE:
            if self.state is TradingState.REDUCING:
                if request.side is OrderSide.BUY:
                    why = "trading is reducing (exits only)" + (f": {self.halt_reason}" if self.halt_reason else "")
                    return Refusal(RULE_REDUCING, why)
                return self._check_active(request, instrument, ref_price, exposure)
            why = f"trading is {self.state}" + (f": {self.halt_reason}" if self.halt_reason else "")
            return Refusal(RULE_TRADING_STATE, why)
        return self._check_active(request, instrument, ref_price, exposure)

    def _check_active(
        self, request: OrderRequest, instrument: Instrument, ref_price: Decimal, exposure: ExposureSnapshot
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
            return None
        if kraken is not None:
            return Refusal(kraken, kraken)
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
        fee = instrument.fee_rate(maker=False)
        if notional * (1 + fee) > exposure.available_quote:
            return Refusal(
                RULE_INSUFFICIENT_FUNDS,
                f"insufficient {instrument.quote}: order needs {notional * (1 + fee):.2f}, "
                f"{exposure.available_quote:.2f} available",
            )
        return None

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
