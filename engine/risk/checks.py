"""Pre-trade checks, run before every order, and the trading state they guard.

Every check is pure: it is handed the order, the instrument and a snapshot of exposure, and answers with the
reason to refuse or ``None``. Orders that only reduce a long (sells within the position) are checked for
precision, minimums and balance but never blocked by size or exposure caps: a cap must not trap a position.

The notional limits are amounts in the account currency. An order's notional (``qty × price``) is in its pair's
quote asset; for a pair quoted in the account currency it is compared as it is, otherwise it is converted with the
snapshot's ``quote_rate`` first. A buy is refused when any of it cannot be valued (the order's own quote asset, or
exposure already held or pending in a pair whose quote asset has no price yet): a cap that cannot be measured must
not be assumed met. The balance check stays in the pair's quote asset, like with like.

States: ``active`` (trading), ``paused`` (strategies' new orders refused; a person or the MCP client paused),
``halted`` (the emergency-stop latch: everything refused until an explicit resume).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import ValidationError

from engine.domain.instrument import Instrument
from engine.domain.orders import OrderSide
from engine.errors import InvalidRequest, LimitExceeded
from engine.exchanges.port import OrderRequest
from engine.risk.limits import RiskLimits

__all__ = ["ExposureSnapshot", "RiskEngine", "TradingState"]


class TradingState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    HALTED = "halted"


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

    def check(
        self, request: OrderRequest, instrument: Instrument, ref_price: Decimal, exposure: ExposureSnapshot
    ) -> str | None:
        """Why ``request`` must not be sent, or ``None`` when it may go."""
        reason = self._check(request, instrument, ref_price, exposure)
        if reason is not None:
            self.refusals += 1
        return reason

    def _check(
        self, request: OrderRequest, instrument: Instrument, ref_price: Decimal, exposure: ExposureSnapshot
    ) -> str | None:
        if self.state is not TradingState.ACTIVE:
            return f"trading is {self.state}" + (f": {self.halt_reason}" if self.halt_reason else "")
        price = request.limit_price if request.limit_price is not None else ref_price
        precision = instrument.check_order(request.qty, price)
        if precision is not None:
            return precision
        notional = request.qty * price
        limits = self.limits
        if request.side is OrderSide.SELL:
            if request.qty > exposure.available_base:
                return f"insufficient {instrument.base}: selling {request.qty}, {exposure.available_base} available"
            return None
        if request.qty > limits.max_order_qty:
            return f"order size {request.qty} exceeds max_order_qty {limits.max_order_qty}"
        account = exposure.account_currency
        if exposure.unvalued:
            return f"cannot value the exposure in {account}: {exposure.unvalued}"
        # The notional in the account currency: as it is when the pair is quoted in it (no arithmetic at all).
        if instrument.quote == account:
            value = notional
            detail = ""
        elif exposure.quote_rate is not None:
            value = notional * exposure.quote_rate
            detail = f" {account} ({format(notional.normalize(), 'f')} {instrument.quote})"
        else:
            return f"cannot value the exposure in {account}: no price for {instrument.quote} in {account}"
        if value > limits.max_order_notional:
            return f"order notional {value:.2f}{detail} exceeds max_order_notional {limits.max_order_notional}"
        if exposure.pair_notional + value > limits.max_pair_notional:
            return (
                f"{request.pair} exposure would be {exposure.pair_notional + value:.2f}, "
                f"above max_pair_notional {limits.max_pair_notional}"
            )
        if exposure.total_notional + value > limits.max_total_notional:
            return (
                f"total exposure would be {exposure.total_notional + value:.2f}, "
                f"above max_total_notional {limits.max_total_notional}"
            )
        if exposure.open_orders + 1 > limits.max_open_orders:
            return f"{exposure.open_orders} open orders: max_open_orders is {limits.max_open_orders}"
        fee = instrument.fee_rate(maker=False)
        if notional * (1 + fee) > exposure.available_quote:
            return (
                f"insufficient {instrument.quote}: order needs {notional * (1 + fee):.2f}, "
                f"{exposure.available_quote:.2f} available"
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
