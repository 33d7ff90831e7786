"""Positions: what a strategy holds in one pair, changed only by applying fills.

Realized PnL is gross (price differences only); fees are tracked beside it so that
``net = realized_pnl - fees``. For every sequence of fills, with the position starting flat:

    cash change + qty * mark == realized_pnl + unrealized_pnl(mark) - fees

which the property tests check: no money is created or lost.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.money import ZERO
from engine.domain.orders import DuplicateFill, Fill, IllegalTransition, TradeId

__all__ = ["Position"]


@dataclass(slots=True)
class Position:
    """A signed position (positive = long) with its average entry price."""

    pair: str
    strategy: str = ""
    qty: Decimal = ZERO
    avg_entry: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    opened_ts_ns: int | None = None
    updated_ts_ns: int = 0
    trade_ids: set[TradeId] = field(default_factory=set)

    @property
    def is_flat(self) -> bool:
        return self.qty == 0

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return self.qty * (mark - self.avg_entry) if self.qty else ZERO

    def apply(self, fill: Fill) -> Decimal:
        """Apply ``fill`` and return the PnL it realized (gross of fees).

        Raises:
            DuplicateFill: this trade id was applied before.
            IllegalTransition: the fill is for another pair or has a non-positive quantity.
        """
        if fill.trade_id in self.trade_ids:
            raise DuplicateFill(f"position {self.pair}: trade {fill.trade_id} already applied")
        if fill.pair != self.pair or fill.qty <= 0:
            raise IllegalTransition(f"position {self.pair}: cannot apply fill {fill.trade_id}")
        self.trade_ids.add(fill.trade_id)
        self.fees += fill.fee
        self.updated_ts_ns = fill.ts_ns
        signed = fill.qty if fill.side.sign > 0 else -fill.qty
        realized = ZERO
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            size = abs(self.qty)
            self.avg_entry = (self.avg_entry * size + fill.price * fill.qty) / (size + fill.qty)
            if self.qty == 0:
                self.opened_ts_ns = fill.ts_ns
            self.qty += signed
        else:
            closing = min(abs(self.qty), fill.qty)
            direction = 1 if self.qty > 0 else -1
            realized = closing * (fill.price - self.avg_entry) * direction
            self.realized_pnl += realized
            self.qty += signed
            if self.qty == 0:
                self.avg_entry = ZERO
                self.opened_ts_ns = None
            elif (self.qty > 0) != (direction > 0):
                # The fill flipped the position: what remains was opened at this fill's price.
                self.avg_entry = fill.price
                self.opened_ts_ns = fill.ts_ns
        return realized
