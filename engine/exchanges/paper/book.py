"""A consumable copy of the latest visible book of one pair.

The simulated venue fills taker orders against the levels of the latest :class:`BookSnapshot` (or the one
level each side of a :class:`Ticker`). What a fill takes is removed from this copy, so two orders placed
before the next snapshot cannot both take the same liquidity; the next snapshot replaces the copy.
"""

from decimal import Decimal

from engine.domain.market_data import BookSnapshot, Ticker
from engine.domain.orders import OrderSide

__all__ = ["MutableBook"]


class MutableBook:
    """Price levels (``[price, qty]``, best first) that fills consume.

    Attributes:
        source: the market event the levels were copied from (to tell whether the copy is still current).
    """

    __slots__ = ("asks", "bids", "source")

    def __init__(self, source: object, bids: list[list[Decimal]], asks: list[list[Decimal]]) -> None:
        self.source = source
        self.bids = bids
        self.asks = asks

    @classmethod
    def from_event(cls, event: BookSnapshot | Ticker) -> "MutableBook":
        """Copy the levels of a snapshot, or the best bid and ask of a ticker (empty levels dropped)."""
        if isinstance(event, Ticker):
            bids = [[event.bid, event.bid_qty]] if event.bid_qty > 0 else []
            asks = [[event.ask, event.ask_qty]] if event.ask_qty > 0 else []
            return cls(event, bids, asks)
        return cls(
            event,
            [[level.price, level.qty] for level in event.bids if level.qty > 0],
            [[level.price, level.qty] for level in event.asks if level.qty > 0],
        )

    def opposite(self, side: OrderSide) -> list[list[Decimal]]:
        """The levels a taker of ``side`` trades against: the asks for a buy, the bids for a sell."""
        return self.asks if side is OrderSide.BUY else self.bids

    def best(self, side: OrderSide) -> Decimal | None:
        """The best price a taker of ``side`` could trade at now, if any."""
        levels = self.opposite(side)
        return levels[0][0] if levels else None

    def take(
        self, side: OrderSide, qty: Decimal, bound: Decimal | None, *, inclusive: bool
    ) -> list[tuple[Decimal, Decimal]]:
        """Consume up to ``qty`` from the levels a taker of ``side`` meets, best first.

        Args:
            side: the taker's side.
            qty: the most to take.
            bound: the worst acceptable price (None: any price).
            inclusive: whether a level exactly at ``bound`` may be taken (a taker limit order matches at its
                price; a resting order is only crossed by levels strictly better than its price).

        Returns:
            ``(price, qty)`` per level taken, best first.
        """
        levels = self.opposite(side)
        taken: list[tuple[Decimal, Decimal]] = []
        buy = side is OrderSide.BUY
        while qty > 0 and levels:
            price, available = levels[0]
            if bound is not None:
                beyond = (
                    (price > bound if inclusive else price >= bound)
                    if buy
                    else (price < bound if inclusive else price <= bound)
                )
                if beyond:
                    break
            size = min(qty, available)
            taken.append((price, size))
            qty -= size
            if size == available:
                levels.pop(0)
            else:
                levels[0][1] = available - size
        return taken
