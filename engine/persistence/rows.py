"""Domain objects encoded as JSON rows for :mod:`.bulk`'s one-statement writes.

Each ``encode_*`` function gives the values the codec gives (``order_to_row`` and friends; a test holds them
equal) as one JSON array of rows in the table's column order, in fewer steps: a tuple per row instead of a dict,
enum members as they are (str subclasses, which JSON writes as their value), and the common case of each check
first. A backtest encodes a few thousand rows per run on its hot thread; the JSON text is immutable and safe to
hand to the writer thread. Values are ``str``, ``int`` or ``None``, which JSON carries exactly.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from engine.domain.balances import AssetBalance
from engine.domain.orders import Fill, Order, TradeId
from engine.domain.positions import Position
from engine.persistence.codec import dec_to_text, to_json
from engine.persistence.errors import StoreError
from engine.persistence.records import FillValueRow

__all__ = [
    "EncodedRows",
    "TripLike",
    "encode_balances",
    "encode_equity",
    "encode_fill_values",
    "encode_fills",
    "encode_orders",
    "encode_positions",
    "encode_round_trips",
    "equity_payload",
]


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """Rows for one table (``kind``: orders, fills, positions, balances, round_trips, fill_values) as one JSON
    array."""

    kind: str
    payload: str
    count: int


def _encode(kind: str, rows: list[tuple[object, ...]]) -> EncodedRows:
    return EncodedRows(kind, json.dumps(rows, separators=(",", ":")), len(rows))


_IDS_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # codec.to_json's format


def _text(value: Decimal) -> str:
    """:func:`~engine.persistence.codec.dec_to_text` (same checks, same text)."""
    if type(value) is Decimal and value.is_finite():
        return format(value, "f")
    return dec_to_text(value)


def _opt_text(value: Decimal | None) -> str | None:
    return None if value is None else _text(value)


def _ids(ids: set[TradeId]) -> str:
    """:func:`~engine.persistence.codec.to_json` of a set of trade ids (a sorted list of str)."""
    if all(type(i) is str for i in ids):
        return _IDS_JSON.encode(sorted(ids))
    return to_json(ids)


def _order_row(o: Order) -> tuple[object, ...]:
    limit = o.limit_price
    return (
        o.client_id,
        o.pair,
        o.side,
        o.order_type,
        _text(o.qty),
        None if limit is None else _text(limit),
        o.strategy,
        o.status,
        o.venue_order_id,
        _text(o.filled_qty),
        _text(o.filled_cost),
        _text(o.fees),
        o.reason,
        o.created_ts_ns,
        o.updated_ts_ns,
        _ids(o.trade_ids),
        o.expires_ns,
        o.reprice_of,
    )


def _fill_row(f: Fill) -> tuple[object, ...]:
    return (
        f.trade_id,
        f.client_id,
        f.pair,
        f.side,
        _text(f.qty),
        _text(f.price),
        _text(f.fee),
        f.fee_asset,
        f.ts_ns,
        f.liquidity,
        f.strategy,
        f.venue_order_id,
    )


class TripLike(Protocol):
    """A closed round trip: :class:`RoundTripRow` or the portfolio's ``ClosedTrade``."""

    @property
    def pair(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def entry_ts_ns(self) -> int: ...
    @property
    def exit_ts_ns(self) -> int: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def entry_price(self) -> Decimal: ...
    @property
    def exit_price(self) -> Decimal: ...
    @property
    def pnl(self) -> Decimal: ...
    @property
    def fees(self) -> Decimal: ...
    @property
    def pnl_value(self) -> Decimal | None: ...
    @property
    def fees_value(self) -> Decimal | None: ...
    @property
    def value_currency(self) -> str | None: ...


def encode_orders(orders: Iterable[Order]) -> EncodedRows:
    """Whole order rows (upserted by client id)."""
    return _encode("orders", [_order_row(o) for o in orders])


def encode_fills(fills: Iterable[Fill]) -> EncodedRows:
    return _encode("fills", [_fill_row(f) for f in fills])


def encode_positions(positions: Iterable[Position], *, trade_ids: bool = True) -> EncodedRows:
    """Position rows (upserted by strategy and pair); ``trade_ids=False`` stores an empty id list (a summary)."""
    return _encode(
        "positions",
        [
            (
                p.strategy,
                p.pair,
                _text(p.qty),
                _text(p.avg_entry),
                _text(p.realized_pnl),
                _text(p.fees),
                p.opened_ts_ns,
                p.updated_ts_ns,
                _ids(p.trade_ids if trade_ids else set()),
            )
            for p in positions
        ],
    )


def encode_balances(balances: Mapping[str, AssetBalance]) -> EncodedRows:
    """The full balance snapshot: assets not in it are removed from the table."""
    return _encode("balances", [(a, _text(b.total), _text(b.held)) for a, b in balances.items()])


def encode_round_trips(trips: Iterable[TripLike]) -> EncodedRows:
    return _encode(
        "round_trips",
        [
            (
                t.pair,
                t.strategy,
                t.entry_ts_ns,
                t.exit_ts_ns,
                _text(t.qty),
                _text(t.entry_price),
                _text(t.exit_price),
                _text(t.pnl),
                _text(t.fees),
                _opt_text(t.pnl_value),
                _opt_text(t.fees_value),
                t.value_currency,
            )
            for t in trips
        ],
    )


def encode_fill_values(values: Iterable[FillValueRow]) -> EncodedRows:
    """Fill values (upserted by trade id): only fills that needed a conversion have one."""
    return _encode(
        "fill_values",
        [(v.trade_id, _opt_text(v.fee_value), _opt_text(v.realized_value), v.value_currency) for v in values],
    )


def encode_equity(ts_ns: Sequence[int], equity: Sequence[Decimal]) -> EncodedRows:
    """Equity points for :func:`write_rows` (see :func:`equity_payload`)."""
    return EncodedRows("equity", equity_payload(ts_ns, equity), len(ts_ns))


def equity_payload(ts_ns: Sequence[int], equity: Sequence[Decimal]) -> str:
    """The points ``(ts_ns[i], equity[i])`` as one JSON array of ``[ts_ns, "equity"]`` pairs.

    A run of the same Decimal object (a flat stretch of the curve) is encoded once.

    Raises:
        CodecError: an equity value is not a finite Decimal.
        StoreError: the columns differ in length, or a timestamp is not an int.
    """
    if len(ts_ns) != len(equity):
        raise StoreError(f"{len(ts_ns)} timestamps for {len(equity)} equity values")
    if not set(map(type, ts_ns)) <= {int}:
        bad = next(ts for ts in ts_ns if type(ts) is not int)
        raise StoreError(f"equity timestamp {bad!r} is not an int")
    texts: list[str] = []
    append = texts.append
    previous: object = None
    text = ""
    for value in equity:
        if value is not previous:
            text = _text(value)
            previous = value
        append(text)
    # dec_to_text's digits, sign and point need no JSON escaping; ints are JSON integers.
    return "[" + ",".join(map('[{},"{}"]'.format, ts_ns, texts)) + "]"
