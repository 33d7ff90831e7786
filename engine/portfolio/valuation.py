"""How each asset is valued in the account currency: a conversion path over the known pairs, then its price.

The paths depend only on the instruments, so they are computed once (:func:`valuation_paths`); pricing an
amount (:func:`value_along`) then only reads the marks. A path has at most two hops:

* none: the asset is the account currency itself;
* one direct hop: the asset is the pair's base and the account currency its quote (``BTC`` on ``XBTUSD``):
  ``value = amount × mark``;
* one inverse hop: the account currency is the base and the asset the quote (``USDT`` on a ``USDUSDT`` pair):
  ``value = amount ÷ mark``;
* two hops through one intermediate asset, each direct or inverse (``ETH`` on ``ETHXBT`` then ``XBTUSD``).

Among the possible paths the shortest wins; among equally short ones, the one with fewer divisions, then the one
whose pair names sort first, so the same instruments always give the same paths (and the same equity).

Arithmetic: a multiplication is Decimal's ``*`` (the caller's context; the engine keeps Python's default,
28 significant digits, half-even, so a direct hop computes exactly what the portfolio always computed). A division
is done in :data:`DIVISION_CONTEXT` (28 significant digits, half-even) whatever the caller's context is, so an
inverse hop's rounding never depends on who asks. No float is involved anywhere. A mark of zero on an inverse hop
prices nothing (None), it never raises.

Nothing here raises for a missing price: an asset without a path, or a path with a missing mark, is "unvalued"
(None), and the caller decides what that means (the portfolio leaves it out of equity and reports it);
:func:`unvalued_reason` says in words which price is missing.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from engine.domain.instrument import Instrument

__all__ = ["DIVISION_CONTEXT", "Hop", "ValuationPath", "unvalued_reason", "valuation_paths", "value_along"]

DIVISION_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
"""The context of every division: Python's default precision, pinned so the caller's context cannot change it."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One conversion step over ``pair``: multiply by its mark, or divide by it when ``inverse``."""

    pair: str
    inverse: bool = False


@dataclass(frozen=True, slots=True)
class ValuationPath:
    """How ``asset`` becomes the account currency: the hops, in order (none for the account currency itself)."""

    asset: str
    hops: tuple[Hop, ...]

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs whose marks the value depends on."""
        return tuple(hop.pair for hop in self.hops)

    @property
    def direct_pair(self) -> str | None:
        """The pair when the path is a single direct hop (``amount × mark``), else None."""
        if len(self.hops) == 1 and not self.hops[0].inverse:
            return self.hops[0].pair
        return None


def _edges(instruments: Iterable[Instrument]) -> dict[str, list[tuple[str, Hop]]]:
    """For each asset, the (asset it converts into, hop) steps the pairs offer, in sorted pair order."""
    edges: dict[str, list[tuple[str, Hop]]] = {}
    for inst in sorted(instruments, key=lambda i: i.pair):
        if inst.base == inst.quote:
            continue
        edges.setdefault(inst.base, []).append((inst.quote, Hop(inst.pair)))
        edges.setdefault(inst.quote, []).append((inst.base, Hop(inst.pair, inverse=True)))
    return edges


def _rank(hops: tuple[Hop, ...]) -> tuple[int, int, tuple[str, ...]]:
    """Shorter first, then fewer divisions, then pair names in order: a total order, so the choice is fixed."""
    return len(hops), sum(hop.inverse for hop in hops), tuple(hop.pair for hop in hops)


def valuation_paths(instruments: Mapping[str, Instrument], quote_currency: str) -> dict[str, ValuationPath]:
    """The best path of every asset that can be valued in ``quote_currency`` (assets without one are absent).

    The account currency maps to the empty path. Only the instruments are read, never the marks: a path exists
    whether or not its marks are known yet.
    """
    edges = _edges(instruments.values())
    best: dict[str, tuple[Hop, ...]] = {}

    def offer(asset: str, hops: tuple[Hop, ...]) -> None:
        known = best.get(asset)
        if known is None or _rank(hops) < _rank(known):
            best[asset] = hops

    for middle, steps in edges.items():
        if middle == quote_currency:
            continue
        # The one hop from ``middle`` to the account currency (the best of them), if any.
        out = [hop for target, hop in steps if target == quote_currency]
        if not out:
            continue
        last = min(((hop,) for hop in out), key=_rank)
        offer(middle, last)
        # Every other asset one pair away from ``middle`` reaches the account currency through it.
        for source, hop in steps:
            if source in (quote_currency, middle):
                continue
            # ``steps`` holds the hop middle -> source; the hop source -> middle is over the same pair, reversed.
            offer(source, (Hop(hop.pair, inverse=not hop.inverse), *last))
    paths = {asset: ValuationPath(asset, hops) for asset, hops in sorted(best.items())}
    paths[quote_currency] = ValuationPath(quote_currency, ())
    return paths


def value_along(amount: Decimal, path: ValuationPath, marks: Mapping[str, Decimal]) -> Decimal | None:
    """``amount`` of ``path.asset`` in the account currency at ``marks`` (None when a mark on the path is missing).

    Each hop multiplies by its pair's mark, or divides by it in :data:`DIVISION_CONTEXT` when inverse; an inverse
    hop with a zero mark prices nothing (None).
    """
    value = amount
    for hop in path.hops:
        mark = marks.get(hop.pair)
        if mark is None:
            return None
        if hop.inverse:
            if not mark:
                return None
            value = DIVISION_CONTEXT.divide(value, mark)
        else:
            value = value * mark
    return value


def unvalued_reason(
    asset: str, path: ValuationPath | None, marks: Mapping[str, Decimal], quote_currency: str
) -> str | None:
    """Why :func:`value_along` cannot value ``asset`` now, naming the missing price; None when it can.

    ``path`` is the asset's path (None when :func:`valuation_paths` found none).
    """
    if path is None:
        return f"no pair converts {asset} into {quote_currency}"
    missing = [hop.pair for hop in path.hops if marks.get(hop.pair) is None]
    if missing:
        return f"no price yet for {' and '.join(missing)} (needed to value {asset} in {quote_currency})"
    zero = [hop.pair for hop in path.hops if hop.inverse and not marks[hop.pair]]
    if zero:
        return f"{' and '.join(zero)} is marked at zero (needed to value {asset} in {quote_currency})"
    return None
