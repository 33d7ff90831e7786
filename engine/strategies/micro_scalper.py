"""Micro scalper: post-only quotes at the touch of the L2 book, spot and long only.

What it does, on every book snapshot of its pair (:meth:`MicroScalper.on_book`):

* **buy** at the best bid, post-only, when the spread is at least ``min_spread_bps`` (``(ask - bid) / mid ×
  10,000``, mid = ``(bid + ask) / 2``), the book imbalance over the top ``depth_levels`` levels,
  ``(bid qty - ask qty) / (bid qty + ask qty)``, is at least ``min_imbalance`` (more size waiting to buy than to
  sell), no buy of its own is open, and the inventory limit leaves room: the quantity is the smaller of what one
  entry may spend (``order_quote_amount`` × weight) and ``max_inventory_quote / bid`` less the position, so the
  position plus the open buy is never worth more than ``max_inventory_quote`` at the bid it buys at; less than the
  pair's order minimum posts nothing;
* **sell** the whole position at the best ask, post-only, whenever it holds one (at least the order minimum) and
  no sell of its own is open, whatever the spread: an exit is never held back;
* every quote lives ``ttl_s`` seconds (good-till-date at the venue) and is then gone: there is no cancel-and-
  replace when the touch moves; the next snapshot after the expiry quotes the touch of that moment. At most one
  buy and one sell of it rest at a time.

Spot only and long only: it buys base with quote and sells only what it bought, never sells short and never
borrows. Post-only means maker or nothing: a quote the book has crossed by the time it arrives is refused by the
venue (Kraken, and the paper venue alike), never filled as a taker.

When it makes money: when the spread it captures, buying at the bid and selling at the ask, is wider than the
fees of the two maker fills, and the price does not drift away meanwhile. At Kraken's maker fee of 0.25 % for an
account with no 30-day volume, a round trip pays about 0.50 % (50 bps) of its value in fees: it needs spreads wider
than that, which liquid pairs (BTC/USD, ETH/USD: a fraction of a basis point) almost never show. Hence the default
``min_spread_bps`` of 60: on such pairs it quotes rarely or never, as it should. A lower fee tier (a larger
30-day volume) lowers the spread it needs.

When it loses: whenever the fees exceed the captured spread (``min_spread_bps`` set below the round trip's fees,
or an exit that has to follow the ask down), and through adverse selection: a resting bid fills mostly when sellers
push the price through it, so the fills it gets are disproportionately the ones just before the price falls, and
its inventory is then sold at a lower ask, or not at all while the price keeps falling (the inventory limit bounds
that loss, nothing here stops it; the common ``stop_loss_pct`` guard acts on candles only, when the feed has them).
Wide spreads themselves are a warning: they are wide on thin, volatile books where adverse selection is worst.
The imbalance filter leans against it, but a top-of-book imbalance is a weak and easily spoofed signal.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from engine.domain.market_data import NS_PER_SECOND, BookLevel, BookSnapshot, Candle
from engine.strategies.base import (
    BookContext,
    Param,
    ParamError,
    ParamValue,
    Quote,
    Signal,
    Strategy,
    StrategyContext,
)
from engine.strategies.common_params import ENTRY_PARAMS

__all__ = ["MicroScalper", "book_imbalance", "spread_bps"]

_D = Decimal
_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_UNUSED = ("equity_fraction_pct", "risk_per_trade_pct", *(p.name for p in ENTRY_PARAMS))


def spread_bps(bid: Decimal, ask: Decimal) -> Decimal:
    """The spread in basis points of the mid: ``(ask - bid) / ((bid + ask) / 2) × 10,000``."""
    return (ask - bid) / ((bid + ask) / 2) * _BPS


def book_imbalance(bids: tuple[BookLevel, ...], asks: tuple[BookLevel, ...], levels: int) -> Decimal | None:
    """``(bid qty - ask qty) / (bid qty + ask qty)`` over the best ``levels`` levels of each side (fewer when the
    book shows fewer); None when both sides are empty. +1: only bids, -1: only asks."""
    bid_qty = sum((level.qty for level in bids[:levels]), _ZERO)
    ask_qty = sum((level.qty for level in asks[:levels]), _ZERO)
    total = bid_qty + ask_qty
    if total <= 0:
        return None
    return (bid_qty - ask_qty) / total


class MicroScalper(Strategy):
    kind = "micro_scalper"
    description = (
        "L2 book, spot, long only: post-only bid at the touch when the spread is at least min_spread_bps and the "
        "book leans to the bids; the position is offered at the ask; quotes expire after ttl_s; inventory capped."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param(
            "depth_levels",
            "int",
            5,
            1,
            100,
            "Book levels per side the imbalance is measured over (fewer when the snapshot shows fewer: those of "
            "Kraken's live feed carry the top 10).",
        ),
        Param(
            "min_spread_bps",
            "decimal",
            _D(60),
            _D(0),
            _D(10_000),
            "Quote a bid only when (ask - bid) / mid is at least this many basis points; a round trip of two maker "
            "fills at Kraken's 0.25 % costs about 50 bps, so below that it pays more in fees than it captures.",
        ),
        Param(
            "min_imbalance",
            "decimal",
            _D("0.2"),
            _D(-1),
            _D(1),
            "Quote a bid only when (bid qty - ask qty) / (bid qty + ask qty) over depth_levels is at least this "
            "(-1: whatever the book's lean).",
        ),
        Param(
            "ttl_s",
            "int",
            10,
            5,
            3600,
            "Seconds each quote lives (good-till-date at the venue); Kraken takes expiry times to the second.",
        ),
        Param(
            "max_inventory_quote",
            "decimal",
            _D(1000),
            _D(1),
            _D(1_000_000_000),
            "Inventory limit, in the pair's quote asset: a bid is sized so that the position plus it is worth at "
            "most this at the bid's price.",
        ),
    )

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        for name in _UNUSED:
            if values[name] != cls.param(name).default:
                raise ParamError(
                    f"{name}: micro_scalper sizes its bids by order_quote_amount and max_inventory_quote and always "
                    f"quotes post-only at the touch for ttl_s; leave {name} at its default"
                )

    def reset(self) -> None:
        """Nothing to rebuild: every decision is made from the snapshot at hand."""

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        """Candles play no part in its decisions."""
        return None

    def on_book(self, book: BookSnapshot, ctx: BookContext) -> tuple[Quote, ...]:
        bid, ask = book.best_bid, book.best_ask
        if bid is None or ask is None or bid <= 0 or ask <= bid:
            return ()  # a side is empty, or the book is locked or crossed: no touch to quote at
        values = self.values
        ttl_ns = int(values["ttl_s"]) * NS_PER_SECOND
        quotes: list[Quote] = []
        if ctx.open_sell_qty <= 0 and ctx.position_qty >= ctx.min_qty and ctx.position_qty > 0:
            quotes.append(Quote("sell", ask, ctx.position_qty, ttl_ns, f"offer the position at the ask {ask}"))
        if ctx.open_buy_qty <= 0:
            buy = self._bid(book, bid, ask, ctx, ttl_ns)
            if buy is not None:
                quotes.append(buy)
        return tuple(quotes)

    def _bid(self, book: BookSnapshot, bid: Decimal, ask: Decimal, ctx: BookContext, ttl_ns: int) -> Quote | None:
        values = self.values
        spread = spread_bps(bid, ask)
        if spread < _D(values["min_spread_bps"]):
            return None
        imbalance = book_imbalance(book.bids, book.asks, int(values["depth_levels"]))
        if imbalance is None or imbalance < _D(values["min_imbalance"]):
            return None
        room = _D(values["max_inventory_quote"]) / bid - ctx.position_qty
        qty = min(ctx.budget_quote / bid, room)
        if qty < ctx.min_qty or qty <= 0:
            return None
        reason = f"spread {spread:.1f} bps, imbalance {imbalance:.3f}: bid {bid}"
        return Quote("buy", bid, qty, ttl_ns, reason)
