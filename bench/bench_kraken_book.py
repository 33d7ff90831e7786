"""Benchmark: Kraken WS v2 book updates through decode + apply + checksum verification.

Generates a deterministic stream of ``book`` update messages for BTC/USD at depth 10 (JSON text as Kraken
sends it: numbers trimmed of trailing zeros, 1-3 level changes per message including deletes, inserts that
push levels out of scope, and the correct CRC32 checksum of the book after each message), then times the
full receive path.

Run: ``python bench/bench_kraken_book.py [--messages N] [--repeat R]``.
"""

import argparse
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

# Let ``python bench/bench_kraken_book.py`` run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.exchanges.kraken import BookMsg, OrderBook, book_checksum, decode, dumps

SYMBOL = "BTC/USD"
DEPTH = 10
PRICE_PRECISION = 1
QTY_PRECISION = 8
TICK = Decimal("0.1")
QTY_STEP = Decimal("0.00000001")


def _qty(rng: random.Random) -> Decimal:
    return (Decimal(rng.randint(1, 300_000_000)) * QTY_STEP).quantize(QTY_STEP)


def _wire(value: Decimal) -> Decimal:
    # Kraken prints numbers trimmed (0.566 for 0.5660); the checksum must still use full precision.
    return value.normalize()


def _message(
    kind: str, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]], crc: int, ts: str
) -> str:
    entry = {
        "symbol": SYMBOL,
        "bids": [{"price": _wire(p), "qty": _wire(q)} for p, q in bids],
        "asks": [{"price": _wire(p), "qty": _wire(q)} for p, q in asks],
        "checksum": crc,
        "timestamp": ts,
    }
    return dumps({"channel": "book", "type": kind, "data": [entry]})


def _timestamp(i: int) -> str:
    seconds, micros = divmod(1_696_613_755_440_295 + i * 137, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def _changes(rng: random.Random, book: OrderBook, is_bid: bool) -> list[tuple[Decimal, Decimal]]:
    """One event on one side: a quantity change, a delete (plus the level scrolling in), or an insert."""
    levels = book.bids() if is_bid else book.asks()
    roll = rng.random()
    if roll < 0.5 and levels:
        price, _ = levels[min(int(rng.expovariate(0.4)), len(levels) - 1)]
        return [(price, _qty(rng))]
    if roll < 0.75 and len(levels) > 2:
        price, _ = levels[rng.randrange(len(levels))]
        worst = levels[-1][0]
        # Kraken sends the level that scrolls into view in the same message.
        step = TICK * rng.randint(1, 5)
        return [(price, Decimal(0)), (worst - step if is_bid else worst + step, _qty(rng))]
    best_bid, best_ask = book.best_bid, book.best_ask
    assert best_bid is not None and best_ask is not None
    offset = TICK * rng.randint(0, 40)
    if is_bid:
        return [(min(best_bid + TICK * 3 - offset, best_ask - TICK), _qty(rng))]
    return [(max(best_ask - TICK * 3 + offset, best_bid + TICK), _qty(rng))]


def generate(n_messages: int, seed: int = 20231006) -> tuple[list[str], int]:
    """JSON texts (snapshot first) and the number of level changes they carry."""
    rng = random.Random(seed)
    book = OrderBook(SYMBOL, depth=DEPTH, price_precision=PRICE_PRECISION, qty_precision=QTY_PRECISION)
    mid = Decimal("45284.3")
    bids = [(mid - TICK * (i + 1) - TICK * rng.randint(0, 3) * i, _qty(rng)) for i in range(DEPTH)]
    asks = [(mid + TICK * (i + 1) + TICK * rng.randint(0, 3) * i, _qty(rng)) for i in range(DEPTH)]
    book.apply_snapshot(bids, asks)
    texts = [_message("snapshot", bids, asks, book.checksum(), _timestamp(0))]
    changes = 0
    for i in range(1, n_messages):
        upd_bids: list[tuple[Decimal, Decimal]] = []
        upd_asks: list[tuple[Decimal, Decimal]] = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            is_bid = rng.random() < 0.5
            for change in _changes(rng, book, is_bid):
                (upd_bids if is_bid else upd_asks).append(change)
                # Track the state while generating so the next change is drawn from the current book.
                book.apply_update([change] if is_bid else [], [] if is_bid else [change])
        changes += len(upd_bids) + len(upd_asks)
        texts.append(_message("update", upd_bids, upd_asks, 0, _timestamp(i)))
    return _with_checksums(texts), changes


def _with_checksums(texts: list[str]) -> list[str]:
    """Replay the messages on a reference book and write each message's true checksum into it."""
    ref = OrderBook(SYMBOL, depth=DEPTH, price_precision=PRICE_PRECISION, qty_precision=QTY_PRECISION)
    out = []
    for text in texts:
        msg = decode(text)
        assert isinstance(msg, BookMsg)
        entry = msg.books[0]
        if msg.type == "snapshot":
            ref.apply_snapshot(entry.bids, entry.asks)
        else:
            ref.apply_update(entry.bids, entry.asks)
        # Cross-check the cached-string checksum against the plain module-level function.
        crc = book_checksum(ref.asks(), ref.bids(), PRICE_PRECISION, QTY_PRECISION)
        assert crc == ref.checksum()
        out.append(text.replace('"checksum":0,', f'"checksum":{crc},') if msg.type == "update" else text)
    return out


def run(texts: list[str]) -> float:
    """Seconds to decode, apply and verify every message."""
    book = OrderBook(SYMBOL, depth=DEPTH, price_precision=PRICE_PRECISION, qty_precision=QTY_PRECISION)
    start = time.perf_counter()
    for text in texts:
        msg = decode(text)
        if type(msg) is not BookMsg:
            raise RuntimeError("unexpected message")
        for entry in msg.books:
            if msg.type == "update":
                book.apply_update(entry.bids, entry.asks)
            else:
                book.apply_snapshot(entry.bids, entry.asks)
            if not book.verify(entry.checksum):
                raise RuntimeError(f"checksum mismatch at {entry.ts_ns}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts, changes = generate(args.messages)
    best = min(run(texts) for _ in range(args.repeat))
    print(f"messages: {len(texts)}  level changes: {changes}  best of {args.repeat}: {best:.3f} s")
    print(f"book updates/sec (messages, decode+apply+verify): {len(texts) / best:,.0f}")
    print(f"level changes/sec: {changes / best:,.0f}")


if __name__ == "__main__":
    main()
