"""The account as the engine sees it: balances, positions per strategy and pair, marks, fees and round trips.

Changed only by :meth:`Portfolio.apply_fill` (and marks by :meth:`Portfolio.mark`). A round trip is recorded each
time a strategy's position in a pair returns to flat: entry and exit are the quantity-weighted averages of the
fills that opened and closed it, and its PnL is net of every fee paid along the way.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.balances import Balances
from engine.domain.instrument import Instrument
from engine.domain.money import ZERO
from engine.domain.orders import Fill
from engine.domain.positions import Position
from engine.portfolio.performance import ClosedTrade

__all__ = ["Portfolio", "TripState"]


@dataclass(slots=True)
class TripState:
    """The fills of the round trip under way for one (strategy, pair)."""

    entry_ts_ns: int = 0
    entry_qty: Decimal = ZERO
    entry_cost: Decimal = ZERO
    exit_qty: Decimal = ZERO
    exit_cost: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO


class Portfolio:
    """Balances, positions and marks, valued in ``quote_currency``."""

    def __init__(
        self, instruments: Mapping[str, Instrument], balances: Mapping[str, Decimal], quote_currency: str
    ) -> None:
        self.instruments = instruments
        self.quote_currency = quote_currency
        self.balances = Balances(balances)
        self.positions: dict[tuple[str, str], Position] = {}
        self.marks: dict[str, Decimal] = {}
        self.fees_paid = ZERO
        self.realized_pnl = ZERO
        self.round_trips: list[ClosedTrade] = []
        self.trips: dict[tuple[str, str], TripState] = {}
        self.fill_count = 0
        self._asset_pair: dict[str, str] = {
            inst.base: pair for pair, inst in instruments.items() if inst.quote == quote_currency
        }

    def restore(
        self,
        positions: Iterable[Position],
        round_trips: Iterable[ClosedTrade],
        trips: Mapping[tuple[str, str], TripState],
    ) -> None:
        for position in positions:
            self.positions[(position.strategy, position.pair)] = position
            self.fees_paid += position.fees
            self.realized_pnl += position.realized_pnl
        self.round_trips = list(round_trips)
        self.trips = dict(trips)

    def position(self, strategy: str, pair: str) -> Position:
        key = (strategy, pair)
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = Position(pair=pair, strategy=strategy)
        return position

    def position_qty(self, strategy: str, pair: str) -> Decimal:
        position = self.positions.get((strategy, pair))
        return position.qty if position is not None else ZERO

    def apply_fill(self, fill: Fill) -> tuple[Position, ClosedTrade | None]:
        """Book a fill on the balances and the strategy's position.

        Raises:
            DuplicateFill: the trade id was booked before (nothing changes).
            InsufficientFunds: the account cannot pay for it (nothing changes).
        """
        instrument = self.instruments[fill.pair]
        position = self.position(fill.strategy, fill.pair)
        if fill.trade_id in position.trade_ids:
            position.apply(fill)  # raises DuplicateFill before any balance moves
        self.balances.apply_fill(fill, instrument.base, instrument.quote)
        before = position.qty
        realized = position.apply(fill)
        self.fill_count += 1
        self.fees_paid += fill.fee
        self.realized_pnl += realized
        self.marks.setdefault(fill.pair, fill.price)
        return position, self._track_trip(fill, before, position, realized)

    def _track_trip(self, fill: Fill, before: Decimal, position: Position, realized: Decimal) -> ClosedTrade | None:
        key = (fill.strategy, fill.pair)
        trip = self.trips.get(key)
        if trip is None:
            trip = self.trips[key] = TripState(entry_ts_ns=fill.ts_ns)
        opening = before == 0 or (before > 0) == (fill.side.sign > 0)
        trip.fees += fill.fee
        trip.realized += realized
        if opening:
            trip.entry_qty += fill.qty
            trip.entry_cost += fill.qty * fill.price
        else:
            trip.exit_qty += fill.qty
            trip.exit_cost += fill.qty * fill.price
        if position.qty != 0:
            return None
        del self.trips[key]
        closed = ClosedTrade(
            pair=fill.pair,
            strategy=fill.strategy,
            entry_ts_ns=trip.entry_ts_ns,
            exit_ts_ns=fill.ts_ns,
            qty=trip.entry_qty,
            entry_price=trip.entry_cost / trip.entry_qty,
            exit_price=trip.exit_cost / trip.exit_qty,
            pnl=trip.realized - trip.fees,
            fees=trip.fees,
        )
        self.round_trips.append(closed)
        return closed

    def mark(self, pair: str, price: Decimal) -> None:
        self.marks[pair] = price

    def asset_value(self, asset: str, amount: Decimal) -> Decimal | None:
        """``amount`` of ``asset`` in the quote currency at the latest mark (None when no mark is known)."""
        if asset == self.quote_currency:
            return amount
        pair = self._asset_pair.get(asset)
        mark = self.marks.get(pair) if pair is not None else None
        return amount * mark if mark is not None else None

    def cash(self) -> Decimal:
        return self.balances.total(self.quote_currency)

    def equity(self) -> Decimal:
        """Everything valued in the quote currency (assets with no mark count at zero)."""
        total = ZERO
        quote = self.quote_currency
        for asset, amount in self.balances.totals():
            if not amount:
                continue
            if asset == quote:
                total += amount
            else:
                pair = self._asset_pair.get(asset)
                mark = self.marks.get(pair) if pair is not None else None
                if mark is not None:
                    total += amount * mark
        return total

    def pair_notional(self, pair: str) -> Decimal:
        mark = self.marks.get(pair, ZERO)
        return sum((p.qty * mark for (_, p_pair), p in self.positions.items() if p_pair == pair), ZERO)

    def total_notional(self) -> Decimal:
        return sum((self.pair_notional(pair) for pair in {p for _, p in self.positions}), ZERO)

    def unrealized_pnl(self) -> Decimal:
        return sum(
            (p.unrealized_pnl(self.marks[p.pair]) for p in self.positions.values() if p.qty and p.pair in self.marks),
            ZERO,
        )

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.qty != 0]
