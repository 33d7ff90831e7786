"""``EquityMeter``: the portfolio's equity, read after every market event and recomputed only when it can change.

The backtest's hot loop reads equity once per candle; this keeps that read to a comparison or two while nothing
that equity depends on moved, and to one multiplication and one addition while a single asset is held.
"""

from decimal import Decimal

from engine.domain.money import ZERO
from engine.portfolio.portfolio import Portfolio
from engine.portfolio.valuation import value_along

__all__ = ["EquityMeter"]


class EquityMeter:
    """:meth:`Portfolio.equity`, recomputed only when it can have changed: the run loop reads it every candle.

    Equity moves only with a fill (``Portfolio.fill_count``) or with the mark of a pair on the valuation path of
    an asset the account holds. While the account is flat, :meth:`value` returns the same Decimal object again
    (which also lets the equity curve's writer encode a flat stretch once). While exactly one such asset is held,
    it is valued by one direct pair and it is the last one :meth:`Portfolio.equity` adds up, its value is
    ``prefix + amount × mark`` with ``prefix`` the sum before it: the same operations in the same order, so the
    result is identical to a full recomputation. Anything else (several held assets, an inverse or two-hop path)
    is recomputed in full whenever a mark of any pair on any held asset's path changes.

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
        direct_pair = portfolio.direct_pairs
        paths = portfolio.paths
        total = ZERO
        prefix = ZERO
        amount_last = ZERO
        used: list[tuple[str, Decimal | None]] = []
        # True while the last asset added up is valued by one direct pair (the incremental case's shape).
        last_is_direct = False
        for asset, amount in portfolio.balances.totals():
            if not amount:
                continue
            if asset == quote:
                total += amount
                last_is_direct = False
                continue
            pair = direct_pair.get(asset)
            if pair is not None:
                mark = marks.get(pair)
                used.append((pair, mark))
                prefix = total
                amount_last = amount
                if mark is not None:
                    total += amount * mark
                last_is_direct = True
                continue
            path = paths.get(asset)
            if path is None:
                continue  # never valued, whatever the marks
            # Every pair on the path counts: a change of any of their marks changes the value.
            for hop in path.hops:
                used.append((hop.pair, marks.get(hop.pair)))
            value = value_along(amount, path, marks)
            if value is not None:
                total += value
            last_is_direct = False
        if len(used) == 1 and last_is_direct:
            self._pair, self._mark = used[0]
            self._prefix = prefix
            self._amount = amount_last
            self._marks_used = []
        else:
            self._pair = None
            self._marks_used = used
        self._value = total
        return total
