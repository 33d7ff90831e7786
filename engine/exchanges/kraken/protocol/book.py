"""The Kraken WebSocket v2 level-2 order book and its CRC32 checksum.

Checksum rules (docs "spot-ws-book-v2"): take the top 10 asks (low to high) then the top 10 bids (high to
low); for each level write the price then the quantity, each formatted with the pair's precision
(``price_precision``, ``qty_precision`` from the instrument channel), with the ``.`` removed and leading
zeros stripped; CRC32 the concatenation. The JSON numbers Kraken sends are trimmed (``0.566`` for
``0.5660``), so formatting their text as received gives wrong checksums: the precision is what makes it
work.

Speed: each side is a dict price -> (qty, price text, level text) plus a sorted list of prices (bisect). The
level text used by the checksum is built once when a level changes, so a checksum only joins 20 cached
strings.
"""

import zlib
from bisect import bisect_left, insort
from collections.abc import Sequence
from decimal import Decimal

from engine.domain.market_data import BookLevel, BookSnapshot

__all__ = ["BOOK_DEPTHS", "CHECKSUM_LEVELS", "OrderBook", "book_checksum", "checksum_text"]

BOOK_DEPTHS = (10, 25, 100, 500, 1000)
CHECKSUM_LEVELS = 10

PriceQty = tuple[Decimal, Decimal]
_Entry = tuple[Decimal, str, str]  # qty, formatted price, formatted price + formatted qty


def _digits(value: Decimal, spec: str) -> str:
    return format(value, spec).replace(".", "").lstrip("0")


def checksum_text(
    asks: Sequence[tuple[Decimal | str, Decimal | str]],
    bids: Sequence[tuple[Decimal | str, Decimal | str]],
    price_precision: int,
    qty_precision: int,
) -> tuple[str, str]:
    """The asks string and bids string that the checksum covers (for debugging a mismatch).

    ``asks`` and ``bids`` are (price, qty) pairs, each side best first; only the top 10 count.
    """
    pspec, qspec = f".{price_precision}f", f".{qty_precision}f"

    def side(levels: Sequence[tuple[Decimal | str, Decimal | str]]) -> str:
        return "".join(
            _digits(Decimal(price), pspec) + _digits(Decimal(qty), qspec) for price, qty in levels[:CHECKSUM_LEVELS]
        )

    return side(asks), side(bids)


def book_checksum(
    asks: Sequence[tuple[Decimal | str, Decimal | str]],
    bids: Sequence[tuple[Decimal | str, Decimal | str]],
    price_precision: int,
    qty_precision: int,
) -> int:
    """Kraken's CRC32 book checksum; ``asks`` and ``bids`` are (price, qty) pairs, each side best first."""
    ask_text, bid_text = checksum_text(asks, bids, price_precision, qty_precision)
    return zlib.crc32((ask_text + bid_text).encode())


class OrderBook:
    """One symbol's book as maintained from ``book`` snapshots and updates.

    Args:
        symbol: the WebSocket symbol (``BTC/USD``), for messages and snapshots.
        depth: the subscribed depth; the book is truncated to it after every level update.
        price_precision: decimals of prices (instrument channel ``price_precision``).
        qty_precision: decimals of quantities (instrument channel ``qty_precision``).
    """

    __slots__ = (
        "_ask_keys",
        "_asks",
        "_bid_keys",
        "_bids",
        "_checksum",
        "_pspec",
        "_qspec",
        "depth",
        "price_precision",
        "qty_precision",
        "symbol",
    )

    def __init__(self, symbol: str, *, depth: int = 10, price_precision: int, qty_precision: int) -> None:
        if depth < 1:
            raise ValueError(f"depth must be positive, got {depth}")
        self.symbol = symbol
        self.depth = depth
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self._pspec = f".{price_precision}f"
        self._qspec = f".{qty_precision}f"
        self._asks: dict[Decimal, _Entry] = {}
        self._bids: dict[Decimal, _Entry] = {}
        # Both key lists ascend: the best ask is first, the best bid is last.
        self._ask_keys: list[Decimal] = []
        self._bid_keys: list[Decimal] = []
        self._checksum: int | None = None

    def clear(self) -> None:
        """Forget every level (e.g. after a checksum mismatch, before resubscribing)."""
        self._asks.clear()
        self._bids.clear()
        self._ask_keys.clear()
        self._bid_keys.clear()
        self._checksum = None

    def apply_snapshot(self, bids: Sequence[PriceQty], asks: Sequence[PriceQty]) -> None:
        """Replace the book with a snapshot's levels."""
        self.clear()
        self.apply_update(bids, asks)

    def apply_update(self, bids: Sequence[PriceQty], asks: Sequence[PriceQty]) -> None:
        """Apply level changes in order: qty 0 deletes a level, others set it; truncate after each."""
        if bids:
            self._apply_side(bids, self._bids, self._bid_keys, is_ask=False)
        if asks:
            self._apply_side(asks, self._asks, self._ask_keys, is_ask=True)
        self._checksum = None

    def _apply_side(
        self, levels: Sequence[PriceQty], book: dict[Decimal, _Entry], keys: list[Decimal], *, is_ask: bool
    ) -> None:
        pspec, qspec, depth = self._pspec, self._qspec, self.depth
        for price, qty in levels:
            if qty:
                qty_text = format(qty, qspec).replace(".", "").lstrip("0")
                entry = book.get(price)
                if entry is not None:
                    book[price] = (qty, entry[1], entry[1] + qty_text)
                    continue
                price_text = format(price, pspec).replace(".", "").lstrip("0")
                book[price] = (qty, price_text, price_text + qty_text)
                insort(keys, price)
                if len(keys) > depth:
                    del book[keys.pop() if is_ask else keys.pop(0)]
            elif book.pop(price, None) is not None:
                del keys[bisect_left(keys, price)]

    def checksum(self) -> int:
        """Kraken's CRC32 of the top 10 levels."""
        crc = self._checksum
        if crc is None:
            asks, bids = self._asks, self._bids
            ask_text = "".join([asks[p][2] for p in self._ask_keys[:CHECKSUM_LEVELS]])
            bid_text = "".join([bids[p][2] for p in reversed(self._bid_keys[-CHECKSUM_LEVELS:])])
            crc = self._checksum = zlib.crc32((ask_text + bid_text).encode())
        return crc

    def verify(self, expected: int) -> bool:
        """True when the book's checksum equals Kraken's ``expected`` one."""
        return self.checksum() == expected

    def bids(self) -> list[PriceQty]:
        """(price, qty) levels, best (highest) first."""
        book = self._bids
        return [(p, book[p][0]) for p in reversed(self._bid_keys)]

    def asks(self) -> list[PriceQty]:
        """(price, qty) levels, best (lowest) first."""
        book = self._asks
        return [(p, book[p][0]) for p in self._ask_keys]

    @property
    def best_bid(self) -> Decimal | None:
        return self._bid_keys[-1] if self._bid_keys else None

    @property
    def best_ask(self) -> Decimal | None:
        return self._ask_keys[0] if self._ask_keys else None

    def snapshot(self, pair: str, ts_ns: int) -> BookSnapshot:
        """The book as an immutable domain snapshot named ``pair``."""
        return BookSnapshot(
            pair=pair,
            ts_ns=ts_ns,
            bids=tuple(BookLevel(p, q) for p, q in self.bids()),
            asks=tuple(BookLevel(p, q) for p, q in self.asks()),
        )
