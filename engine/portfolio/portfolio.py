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

__all__ = ["EquityMeter", "Portfolio", "TripState"]


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
        opening = not before or (before > 0) == (fill.side.sign > 0)
        trip.fees += fill.fee
        trip.realized += realized
        if opening:
            trip.entry_qty += fill.qty
            trip.entry_cost += fill.qty * fill.price
        else:
            trip.exit_qty += fill.qty
            trip.exit_cost += fill.qty * fill.price
        if position.qty:
            return None
        del self.trips[key]
        # pair, strategy, entry_ts_ns, exit_ts_ns, qty, entry_price, exit_price, pnl (net of fees), fees.
        closed = ClosedTrade(
            fill.pair,
            fill.strategy,
            trip.entry_ts_ns,
            fill.ts_ns,
            trip.entry_qty,
            trip.entry_cost / trip.entry_qty,
            trip.exit_cost / trip.exit_qty,
            trip.realized - trip.fees,
            trip.fees,
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

    def equity_meter(self) -> "EquityMeter":
        """A cheap way to read :meth:`equity` after every market event (see :class:`EquityMeter`)."""
        return EquityMeter(self)

    def pair_notional(self, pair: str) -> Decimal:
        # sum(..., ZERO) written out: the same additions in the same order, without a generator per call.
        mark = self.marks.get(pair, ZERO)
        total = ZERO
        for (_, p_pair), p in self.positions.items():
            if p_pair == pair:
                total += p.qty * mark
        return total

    def total_notional(self) -> Decimal:
        total = ZERO
        for pair in {p for _, p in self.positions}:
            total += self.pair_notional(pair)
        return total

    def unrealized_pnl(self) -> Decimal:
        return sum(
            (p.unrealized_pnl(self.marks[p.pair]) for p in self.positions.values() if p.qty and p.pair in self.marks),
            ZERO,
        )

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.qty != 0]


class EquityMeter:
    """:meth:`Portfolio.equity`, recomputed only when it can have changed: the run loop reads it every candle.

    Equity moves only with a fill (``Portfolio.fill_count``) or with the mark of a pair whose base asset the
    account holds. While the account is flat, :meth:`value` returns the same Decimal object again (which also
    lets the equity curve's writer encode a flat stretch once). While exactly one such asset is held and it is
    the last one :meth:`Portfolio.equity` adds up, its value is ``prefix + amount × mark`` with ``prefix`` the
    sum before it: the same operations in the same order, so the result is identical to a full recomputation.
    Anything else is recomputed in full.

    Valid for as long as the portfolio's balances change only through :meth:`Portfolio.apply_fill` (the run
    loop's case: reconciliation sets balances before it starts); after any other change, make a new meter.
    """

    __slots__ = ("_amount", "_fills", "_mark", "_marks_used", "_pair", "_portfolio", "_prefix", "_value")

    def __init__(self, portfolio: Portfolio) -> None:
        self._portfolio = portfolio
        self._fills = -1
        self._value = ZERO
        # The single held pair of the incremental case, or None.
        self._pair: str | None = None
        self._prefix = ZERO
        self._amount = ZERO
        self._mark: Decimal | None = None
        # Otherwise: (pair, mark object used) for every pair whose mark counts.
        self._marks_used: list[tuple[str, Decimal | None]] = []

    def value(self) -> Decimal:
        """The portfolio's equity now (equal to ``portfolio.equity()``)."""
        portfolio = self._portfolio
        if portfolio.fill_count != self._fills:
            return self._refresh()
        pair = self._pair
        if pair is not None:
            mark = portfolio.marks.get(pair)
            if mark is self._mark:
                return self._value
            value = self._prefix + self._amount * mark if mark is not None else self._prefix
            self._mark = mark
            self._value = value
            return value
        marks = portfolio.marks
        for held, used in self._marks_used:
            if marks.get(held) is not used:
                return self._refresh()
        return self._value

    def _refresh(self) -> Decimal:
        """:meth:`Portfolio.equity`'s loop, noting which marks it read and the sum before the last of them."""
        portfolio = self._portfolio
        self._fills = portfolio.fill_count
        quote = portfolio.quote_currency
        marks = portfolio.marks
        asset_pair = portfolio._asset_pair
        total = ZERO
        prefix = ZERO
        amount_last = ZERO
        used: list[tuple[str, Decimal | None]] = []
        last_is_marked = False
        for asset, amount in portfolio.balances.totals():
            if not amount:
                continue
            if asset == quote:
                total += amount
                last_is_marked = False
                continue
            pair = asset_pair.get(asset)
            if pair is None:
                continue  # never valued, whatever the marks
            mark = marks.get(pair)
            used.append((pair, mark))
            prefix = total
            amount_last = amount
            if mark is not None:
                total += amount * mark
            last_is_marked = True
        if len(used) == 1 and last_is_marked:
            self._pair, self._mark = used[0]
            self._prefix = prefix
            self._amount = amount_last
            self._marks_used = []
        else:
            self._pair = None
            self._marks_used = used
        self._value = total
        return total
