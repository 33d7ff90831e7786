"""The WS v2 order book: snapshot/update semantics, truncation and Kraken's CRC32 checksum."""

import json
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.market_data import BookLevel
from engine.exchanges.kraken import OrderBook, book_checksum, checksum_text

D = Decimal

# The official worked example (docs.kraken.com spot-ws-book-v2), hard-coded to be checked without ../shared.
OFFICIAL_ASKS = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]
OFFICIAL_BIDS = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
OFFICIAL_ASKS_STRING = (
    "4528521000004528641545719534528661545711094528961545609114529021589066045291815455349145294744547494529613538"
    "0000452975994554245299518772827"
)
OFFICIAL_CHECKSUM = 3310070434


def _dec(levels: list[tuple[str, str]]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in levels]


def _trimmed(levels: list[tuple[str, str]]) -> list[tuple[Decimal, Decimal]]:
    # What json.loads(parse_float=Decimal) gives for Kraken's trimmed JSON numbers (0.1 for 0.10000000).
    return [(D(p).normalize(), D(q).normalize()) for p, q in levels]


def _btc_book(depth: int = 10) -> OrderBook:
    return OrderBook("BTC/USD", depth=depth, price_precision=1, qty_precision=8)


def test_official_checksum_hard_coded() -> None:
    assert book_checksum(OFFICIAL_ASKS, OFFICIAL_BIDS, 1, 8) == OFFICIAL_CHECKSUM
    asks_text, _ = checksum_text(OFFICIAL_ASKS, OFFICIAL_BIDS, 1, 8)
    assert asks_text == OFFICIAL_ASKS_STRING
    book = _btc_book()
    book.apply_snapshot(_dec(OFFICIAL_BIDS), _dec(OFFICIAL_ASKS))
    assert book.checksum() == OFFICIAL_CHECKSUM
    assert book.verify(OFFICIAL_CHECKSUM)
    assert not book.verify(OFFICIAL_CHECKSUM + 1)


def test_official_checksum_from_shared(shared_dir: Path) -> None:
    path = shared_dir / "kraken" / "vectors.json"
    if not path.is_file():
        pytest.skip("vectors.json absent")
    for v in json.loads(path.read_text())["ws_v2_book_checksum"]:
        asks = [tuple(level) for level in v["asks"]]
        bids = [tuple(level) for level in v["bids"]]
        assert checksum_text(asks, bids, v["price_precision"], v["qty_precision"]) == (
            v["asks_string"],
            v["bids_string"],
        )
        assert book_checksum(asks, bids, v["price_precision"], v["qty_precision"]) == v["expected_checksum"]


def test_trimmed_wire_numbers_still_checksum_correctly() -> None:
    # The pitfall: Kraken prints 0.1 for 0.10000000; formatting with the pair's precision restores the digits.
    book = _btc_book()
    book.apply_snapshot(_trimmed(OFFICIAL_BIDS), _trimmed(OFFICIAL_ASKS))
    assert book.checksum() == OFFICIAL_CHECKSUM
    naive = "".join(
        str(p).replace(".", "").lstrip("0") + str(q).replace(".", "").lstrip("0") for p, q in _trimmed(OFFICIAL_ASKS)
    )
    assert naive != OFFICIAL_ASKS_STRING


def test_update_sets_deletes_and_keeps_order() -> None:
    book = _btc_book()
    book.apply_snapshot(_dec(OFFICIAL_BIDS), _dec(OFFICIAL_ASKS))
    book.apply_update(
        bids=[(D("45283.5"), D("0")), (D("45284.0"), D("2.5"))],
        asks=[(D("45286.4"), D("0.5")), (D("45285.2"), D(0))],
    )
    assert book.best_bid == D("45284.0")
    assert book.best_ask == D("45286.4")
    assert book.asks()[0] == (D("45286.4"), D("0.5"))
    assert [p for p, _ in book.bids()][:2] == [D("45284.0"), D("45283.4")]
    assert len(book.asks()) == 9
    expected = book_checksum(book.asks(), book.bids(), 1, 8)
    assert book.checksum() == expected
    # Deleting a level that is not there is a no-op.
    book.apply_update([(D("1.0"), D(0))], [])
    assert book.checksum() == expected


def test_updates_within_a_message_are_sequential() -> None:
    book = _btc_book()
    book.apply_snapshot(_dec(OFFICIAL_BIDS), _dec(OFFICIAL_ASKS))
    book.apply_update([], [(D("45285.2"), D(0)), (D("45285.2"), D("3")), (D("45285.2"), D("4"))])
    assert book.asks()[0] == (D("45285.2"), D("4"))


def test_truncation_to_subscribed_depth() -> None:
    book = _btc_book(depth=10)
    book.apply_snapshot(_dec(OFFICIAL_BIDS), _dec(OFFICIAL_ASKS))
    # A better ask pushes the worst one out of scope; Kraken sends no delete for it.
    book.apply_update([], [(D("45285.0"), D("1"))])
    asks = book.asks()
    assert len(asks) == 10
    assert asks[0][0] == D("45285.0")
    assert D("45299.5") not in [p for p, _ in asks]
    # A level worse than all ten is dropped at once.
    book.apply_update([(D("40000.0"), D("1"))], [])
    assert len(book.bids()) == 10
    assert book.bids()[-1][0] == D("45276.6")
    # Deleting then leaves room for the level Kraken sends next.
    book.apply_update([(D("45283.5"), D(0)), (D("45270.0"), D("1"))], [])
    assert book.bids()[-1] == (D("45270.0"), D("1"))


def test_checksum_covers_top_ten_only_at_larger_depth() -> None:
    book = _btc_book(depth=25)
    asks = [(D("45285.2") + D("0.1") * i, D("1")) for i in range(20)]
    bids = [(D("45283.5") - D("0.1") * i, D("1")) for i in range(20)]
    book.apply_snapshot(bids, asks)
    assert len(book.asks()) == 20
    assert book.checksum() == book_checksum(asks[:10], bids[:10], 1, 8)


def test_checksum_mismatch_is_detected_after_a_missed_update() -> None:
    truth, ours = _btc_book(), _btc_book()
    truth.apply_snapshot(_dec(OFFICIAL_BIDS), _dec(OFFICIAL_ASKS))
    ours.apply_snapshot(_dec(OFFICIAL_BIDS), _dec(OFFICIAL_ASKS))
    truth.apply_update([(D("45283.4"), D("0.2"))], [])
    truth.apply_update([], [(D("45286.6"), D(0))])
    ours.apply_update([], [(D("45286.6"), D(0))])  # the first update was lost
    assert not ours.verify(truth.checksum())
    ours.clear()
    assert ours.asks() == [] and ours.bids() == []
    assert ours.checksum() == zlib.crc32(b"")


def test_snapshot_to_domain() -> None:
    book = _btc_book()
    book.apply_snapshot(_dec(OFFICIAL_BIDS[:2]), _dec(OFFICIAL_ASKS[:1]))
    snap = book.snapshot("XBTUSD", 123)
    assert snap.pair == "XBTUSD" and snap.ts_ns == 123
    assert snap.bids == (BookLevel(D("45283.5"), D("0.1")), BookLevel(D("45283.4"), D("1.54582015")))
    assert snap.asks == (BookLevel(D("45285.2"), D("0.001")),)
    assert snap.best_bid == D("45283.5")


def test_invalid_depth() -> None:
    with pytest.raises(ValueError):
        OrderBook("X/Y", depth=0, price_precision=1, qty_precision=1)


# Model-based check: random update sequences against a naive book (full sort, truncate after each level).
_prices = st.integers(min_value=1, max_value=60).map(lambda n: D(n) / 10 + D(100))
_qtys = st.one_of(st.just(D(0)), st.integers(min_value=1, max_value=10**6).map(lambda n: D(n) / 1000))
_levels = st.lists(st.tuples(_prices, _qtys), max_size=6)


def _naive_apply(side: dict[Decimal, Decimal], levels: list[tuple[Decimal, Decimal]], depth: int, asks: bool) -> None:
    for price, qty in levels:
        if qty == 0:
            side.pop(price, None)
        else:
            side[price] = qty
        keep = sorted(side, reverse=not asks)[:depth]
        for p in list(side):
            if p not in keep:
                del side[p]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([3, 10, 25]), st.lists(st.tuples(_levels, _levels), min_size=1, max_size=30))
def test_book_matches_naive_model(depth: int, messages: list[tuple[list[tuple[Decimal, Decimal]], ...]]) -> None:
    book = OrderBook("T/USD", depth=depth, price_precision=1, qty_precision=3)
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for upd_bids, upd_asks in messages:
        book.apply_update(upd_bids, upd_asks)
        _naive_apply(bids, upd_bids, depth, asks=False)
        _naive_apply(asks, upd_asks, depth, asks=True)
        want_bids = sorted(bids.items(), reverse=True)
        want_asks = sorted(asks.items())
        assert book.bids() == want_bids
        assert book.asks() == want_asks
        assert book.checksum() == book_checksum(want_asks, want_bids, 1, 3)
