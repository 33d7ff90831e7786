"""The account as the engine sees it: balances, positions per strategy and pair, marks, fees and round trips.

Changed only by :meth:`Portfolio.apply_fill` (and marks by :meth:`Portfolio.mark`). A round trip is recorded each
time a strategy's position in a pair returns to flat: entry and exit are the quantity-weighted averages of the
fills that opened and closed it, and its PnL is net of every fee paid along the way.

Every asset is valued in the account currency along the path :mod:`engine.portfolio.valuation` finds over the
instruments (direct, inverse or through one intermediate asset). A holding that cannot be priced now (no path, or
a mark on its path not known yet) is left out of equity and listed by :meth:`Portfolio.unvalued`.

Notionals and unrealized PnL are first computed in each pair's own quote asset (``qty × mark``), then converted
into the account currency by valuing that amount of the quote asset (:meth:`Portfolio.quote_value`); a pair
quoted in the account currency is taken as it is, with no conversion arithmetic at all. A pair whose quote asset
cannot be valued now is left out of those read-only sums and listed by :meth:`Portfolio.unvalued_notional`.

Realized PnL and fees are in the account currency too, valued once, when the fill is booked, at the marks of that
moment (:class:`FillValue`): ``realized_pnl`` and ``fees_paid`` add those values, and a round trip's ``pnl_value``
and ``fees_value`` are the sums of its fills' values. An amount that cannot be valued when booked (no price yet for
its asset) is never added as if it were account currency: it goes to ``realized_unconverted`` /
``fees_unconverted`` (asset -> amount, in that asset) and makes its round trip's values unknown (None). The
usual fill, in a pair quoted in the account currency with its fee in the account currency, takes no conversion:
its amounts are added as they are, exactly as before values existed. A restart re-books the stored fills, whose
marks are long gone: :meth:`Portfolio.preset_fill_values` hands back the values they were booked at.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from engine.domain.balances import Balances
from engine.domain.instrument import Instrument
from engine.domain.money import ZERO
from engine.domain.orders import Fill, TradeId
from engine.domain.positions import Position
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.valuation import ValuationPath, unvalued_reason, valuation_paths, value_along

if TYPE_CHECKING:
    from engine.portfolio.equity_meter import EquityMeter

__all__ = ["FillValue", "Portfolio", "StoredFillValue", "TripState"]


@dataclass(frozen=True, slots=True)
class FillValue:
    """A fill's fee and realized PnL (gross) in the account currency, valued when the fill was booked.

    ``None``: that amount could not be valued then (no price yet on its asset's path); a zero amount is always
    valued (zero).
    """

    fee: Decimal | None
    realized: Decimal | None


_UNKNOWN = FillValue(None, None)


class StoredFillValue(Protocol):
    """A fill's stored values (``engine.persistence.FillValueRow``): ``value_currency`` None when none were stored."""

    @property
    def trade_id(self) -> str: ...
    @property
    def fee_value(self) -> Decimal | None: ...
    @property
    def realized_value(self) -> Decimal | None: ...
    @property
    def value_currency(self) -> str | None: ...


@dataclass(slots=True)
class TripState:
    """The fills of the round trip under way for one (strategy, pair).

    ``fees_value`` and ``realized_value`` are tracked only once a fill of the trip needed a conversion
    (``converted``); until then they equal ``fees`` and ``realized``. None once an amount could not be valued.
    """

    entry_ts_ns: int = 0
    entry_qty: Decimal = ZERO
    entry_cost: Decimal = ZERO
    exit_qty: Decimal = ZERO
    exit_cost: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    converted: bool = False
    fees_value: Decimal | None = ZERO
    realized_value: Decimal | None = ZERO


class Portfolio:
    """Balances, positions and marks, valued in ``quote_currency``.

    Attributes:
        realized_pnl: realized PnL (gross of fees) of every fill, in the account currency (valued when booked).
        fees_paid: every fee, in the account currency (valued when paid).
        realized_unconverted: asset -> realized PnL that could not be valued when booked, in that asset.
        fees_unconverted: asset -> fees that could not be valued when paid, in that asset.
        fill_values: trade id -> :class:`FillValue` of every fill that needed a conversion (what the journal
            stores; fills in the account currency's own pairs, with account-currency fees, have none).
    """

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
        self.realized_unconverted: dict[str, Decimal] = {}
        self.fees_unconverted: dict[str, Decimal] = {}
        self.fill_values: dict[TradeId, FillValue] = {}
        # Values to book re-booked fills at instead of the current marks (see preset_fill_values).
        self._preset: dict[str, FillValue] = {}
        self.round_trips: list[ClosedTrade] = []
        self.trips: dict[tuple[str, str], TripState] = {}
        self.fill_count = 0
        # Computed once (read-only): the instruments do not change while the portfolio lives.
        self.paths: dict[str, ValuationPath] = valuation_paths(instruments, quote_currency)
        # The assets valued by one direct hop (``amount × mark``): the common case, read without a path walk.
        self.direct_pairs: dict[str, str] = {
            asset: pair for asset, path in self.paths.items() if (pair := path.direct_pair) is not None
        }
        # Each pair's quote asset: notionals are converted from it into the account currency.
        self._quote_of: dict[str, str] = {pair: inst.quote for pair, inst in instruments.items()}
        # The pairs whose amounts are account currency already (the usual fill takes no conversion).
        self._account_quoted = frozenset(pair for pair, quote in self._quote_of.items() if quote == quote_currency)

    def restore(
        self,
        positions: Iterable[Position],
        round_trips: Iterable[ClosedTrade],
        trips: Mapping[tuple[str, str], TripState],
    ) -> None:
        """Adopt saved positions, round trips and trips under way.

        A position's realized PnL and fees are in its pair's quote asset, accumulated at rates not known any more:
        those of a pair quoted in the account currency are added to the totals, the others to the unconverted
        tallies (under the quote asset; under the pair for an unknown pair).
        """
        for position in positions:
            self.positions[(position.strategy, position.pair)] = position
            if position.pair in self._account_quoted:
                self.fees_paid += position.fees
                self.realized_pnl += position.realized_pnl
                continue
            asset = self._quote_of.get(position.pair, position.pair)
            if position.fees:
                self.fees_unconverted[asset] = self.fees_unconverted.get(asset, ZERO) + position.fees
            if position.realized_pnl:
                self.realized_unconverted[asset] = self.realized_unconverted.get(asset, ZERO) + position.realized_pnl
        self.round_trips = list(round_trips)
        self.trips = dict(trips)

    def preset_fill_values(self, stored: Iterable[StoredFillValue]) -> None:
        """Book the fills about to be re-booked (a restart) at their stored values instead of the current marks.

        Each preset is used once, by the fill with its trade id. A stored value in another account currency, or
        none at all (``value_currency`` None: booked before values were stored), is unknown: its non-zero amounts
        go to the unconverted tallies, never converted at today's marks. Fills without a preset (new ones) are
        valued at the marks as usual; fills that need no conversion ignore theirs.
        """
        currency = self.quote_currency
        for row in stored:
            known = row.value_currency == currency
            self._preset[row.trade_id] = FillValue(row.fee_value, row.realized_value) if known else _UNKNOWN

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
        preset = self._preset.pop(fill.trade_id, None) if self._preset else None
        value: FillValue | None = None
        if fill.fee_asset == self.quote_currency and fill.pair in self._account_quoted:
            self.fees_paid += fill.fee
            self.realized_pnl += realized
        else:
            value = self._book_value(fill, instrument.quote, realized, preset)
        self.marks.setdefault(fill.pair, fill.price)
        return position, self._track_trip(fill, before, position, realized, value)

    def _book_value(self, fill: Fill, quote: str, realized: Decimal, preset: FillValue | None) -> FillValue:
        """Value a fill's fee and realized PnL (``preset``, else at the current marks) and add them up."""
        if preset is None:
            preset = FillValue(self._value_of(fill.fee_asset, fill.fee), self._value_of(quote, realized))
        # Zero is zero in any currency, with or without a price (and whatever was stored for it).
        fee = fill.fee if not fill.fee else preset.fee
        realized_value = realized if not realized else preset.realized
        if fee is None:
            self.fees_unconverted[fill.fee_asset] = self.fees_unconverted.get(fill.fee_asset, ZERO) + fill.fee
        else:
            self.fees_paid += fee
        if realized_value is None:
            self.realized_unconverted[quote] = self.realized_unconverted.get(quote, ZERO) + realized
        else:
            self.realized_pnl += realized_value
        value = self.fill_values[fill.trade_id] = FillValue(fee, realized_value)
        return value

    def _value_of(self, asset: str, amount: Decimal) -> Decimal | None:
        """``amount`` of ``asset`` in the account currency now: as it is for the account currency or zero."""
        if asset == self.quote_currency or not amount:
            return amount
        return self.asset_value(asset, amount)

    def _track_trip(
        self, fill: Fill, before: Decimal, position: Position, realized: Decimal, value: FillValue | None
    ) -> ClosedTrade | None:
        key = (fill.strategy, fill.pair)
        trip = self.trips.get(key)
        if trip is None:
            trip = self.trips[key] = TripState(entry_ts_ns=fill.ts_ns)
        opening = not before or (before > 0) == (fill.side.sign > 0)
        if value is not None and not trip.converted:
            # The fills so far took no conversion: their values are their amounts.
            trip.converted = True
            trip.fees_value, trip.realized_value = trip.fees, trip.realized
        if trip.converted:
            fee, gain = (fill.fee, realized) if value is None else (value.fee, value.realized)
            trip.fees_value = None if fee is None or trip.fees_value is None else trip.fees_value + fee
            trip.realized_value = None if gain is None or trip.realized_value is None else trip.realized_value + gain
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
        pnl = trip.realized - trip.fees
        pnl_value: Decimal | None
        fees_value: Decimal | None
        if not trip.converted:
            pnl_value, fees_value = pnl, trip.fees  # the same Decimals: no conversion took place
        elif trip.realized_value is None or trip.fees_value is None:
            pnl_value = fees_value = None
        else:
            pnl_value, fees_value = trip.realized_value - trip.fees_value, trip.fees_value
        # pair, strategy, entry_ts_ns, exit_ts_ns, qty, entry_price, exit_price, pnl (net of fees), fees, and the
        # last two in the account currency.
        closed = ClosedTrade(
            fill.pair,
            fill.strategy,
            trip.entry_ts_ns,
            fill.ts_ns,
            trip.entry_qty,
            trip.entry_cost / trip.entry_qty,
            trip.exit_cost / trip.exit_qty,
            pnl,
            trip.fees,
            pnl_value,
            fees_value,
            self.quote_currency,
        )
        self.round_trips.append(closed)
        return closed

    def mark(self, pair: str, price: Decimal) -> None:
        self.marks[pair] = price

    def valuation_path(self, asset: str) -> ValuationPath | None:
        """How ``asset`` is valued in the quote currency (None when no pair path leads there)."""
        return self.paths.get(asset)

    def asset_value(self, asset: str, amount: Decimal) -> Decimal | None:
        """``amount`` of ``asset`` in the quote currency at the latest marks (None when it cannot be priced now)."""
        path = self.paths.get(asset)
        return value_along(amount, path, self.marks) if path is not None else None

    def cash(self) -> Decimal:
        return self.balances.total(self.quote_currency)

    def equity(self) -> Decimal:
        """Every holding valued in the quote currency; those that cannot be priced now (:meth:`unvalued`) are left out.

        Summed in the balances' order; :class:`EquityMeter` repeats exactly these operations.
        """
        total = ZERO
        quote = self.quote_currency
        marks = self.marks
        direct_pair = self.direct_pairs
        paths = self.paths
        for asset, amount in self.balances.totals():
            if not amount:
                continue
            if asset == quote:
                total += amount
                continue
            pair = direct_pair.get(asset)
            if pair is not None:
                mark = marks.get(pair)
                if mark is not None:
                    total += amount * mark
                continue
            path = paths.get(asset)
            if path is not None:
                value = value_along(amount, path, marks)
                if value is not None:
                    total += value
        return total

    def unvalued(self) -> dict[str, Decimal]:
        """Non-zero holdings (asset -> total) that :meth:`equity` leaves out: no path, or a mark on it missing."""
        unpriced: dict[str, Decimal] = {}
        for asset, amount in sorted(self.balances.totals()):
            if amount and self.asset_value(asset, amount) is None:
                unpriced[asset] = amount
        return unpriced

    def equity_meter(self) -> "EquityMeter":
        """A cheap way to read :meth:`equity` after every market event (see :class:`EquityMeter`)."""
        from engine.portfolio.equity_meter import EquityMeter

        return EquityMeter(self)

    def quote_value(self, pair: str, amount: Decimal) -> Decimal | None:
        """``amount`` of ``pair``'s quote asset in the account currency at the latest marks.

        A pair quoted in the account currency gives ``amount`` back as it is (no arithmetic, so those figures are
        exactly what they were before any conversion existed), and so does a zero amount (worth zero in any
        currency, price or not). Otherwise the quote asset is valued along its path (:meth:`asset_value`).

        Returns:
            The value, or None when it cannot be valued now: an unknown pair, no path from its quote asset, or a
            mark on that path not known yet (:meth:`quote_unvalued` says which).
        """
        quote = self._quote_of.get(pair)
        if quote == self.quote_currency or not amount:
            return amount
        if quote is None:
            return None
        return self.asset_value(quote, amount)

    def quote_unvalued(self, pair: str) -> str | None:
        """Why an amount in ``pair``'s quote asset cannot be valued in the account currency now (None when it can).

        The reason names the missing price (``no price yet for XBTUSD (needed to value BTC in USD)``).
        """
        quote = self._quote_of.get(pair)
        if quote is None:
            return f"{pair} is not a known pair"
        return unvalued_reason(quote, self.paths.get(quote), self.marks, self.quote_currency)

    def pair_notional_in_quote(self, pair: str) -> Decimal:
        """Every strategy's position in ``pair`` at its mark, in the pair's own quote asset (zero without a mark)."""
        # sum(..., ZERO) written out: the same additions in the same order, without a generator per call.
        mark = self.marks.get(pair, ZERO)
        total = ZERO
        for (_, p_pair), p in self.positions.items():
            if p_pair == pair:
                total += p.qty * mark
        return total

    def pair_notional(self, pair: str) -> Decimal:
        """:meth:`pair_notional_in_quote` in the account currency (:meth:`quote_value`).

        Zero when it cannot be converted now: the figure is left out, and :meth:`unvalued_notional` lists it.
        """
        value = self.quote_value(pair, self.pair_notional_in_quote(pair))
        return value if value is not None else ZERO

    def total_notional(self) -> Decimal:
        """The sum of :meth:`pair_notional` over every pair with a position, in the account currency.

        Pairs that cannot be converted now are left out (:meth:`unvalued_notional` lists them).
        """
        total = ZERO
        for pair in {p for _, p in self.positions}:
            total += self.pair_notional(pair)
        return total

    def unvalued_notional(self) -> dict[str, Decimal]:
        """Pairs (pair -> notional in its own quote) that :meth:`pair_notional` and :meth:`total_notional` leave out.

        Those are also the pairs whose unrealized PnL :meth:`unrealized_pnl` leaves out.
        """
        left_out: dict[str, Decimal] = {}
        quote_currency = self.quote_currency
        for pair in sorted({p for _, p in self.positions}):
            if self._quote_of.get(pair) == quote_currency:
                continue  # always valued: no need to add it up
            amount = self.pair_notional_in_quote(pair)
            if self.quote_value(pair, amount) is None:
                left_out[pair] = amount
        return left_out

    def unrealized_pnl(self) -> Decimal:
        """Every open position's unrealized PnL at its mark, each converted into the account currency.

        A position without a mark, or in a pair whose quote asset cannot be valued now (:meth:`unvalued_notional`),
        is left out.
        """
        total = ZERO
        marks = self.marks
        for p in self.positions.values():
            if p.qty and p.pair in marks:
                value = self.quote_value(p.pair, p.unrealized_pnl(marks[p.pair]))
                if value is not None:
                    total += value
        return total

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.qty != 0]
