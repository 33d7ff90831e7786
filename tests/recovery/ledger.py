"""An independent ledger: the invariants any state file must satisfy, whenever the engine was stopped.

Computed here from the stored fills with plain Decimal arithmetic, not by the engine's Portfolio: the promise is
that a SIGKILL at any instant leaves a file whose balances, orders and positions tell one consistent story. Every
broken invariant is one :class:`Violation` with a one-line reason naming the row and both amounts.

Invariants (``Violation.kind``):

* ``balances``: each asset's stored total is the opening balance plus every fill (a buy adds qty base and takes
  qty × price quote, a sell the reverse) minus each fee in its fee asset, exactly; no total is negative.
* ``ids``: trade ids, client order ids and order numbers are unique; no trade id is listed by two orders.
* ``orphan_fill``: every fill names a stored order.
* ``fill_before_order``: no fill is dated before its order was created.
* ``order_vs_fills``: each order's filled qty, cost, fees and trade ids are those of its fills, its pair, side
  and strategy are theirs, and its status agrees (filled iff filled_qty == qty; open orders have filled_qty < qty).
* ``positions``: each stored position's qty is the signed sum of that strategy's fills on that pair.
* ``equity``: the equity curve's timestamps never go back.
* ``cursor``: the replay cursor is within the data.
* ``unreadable``: the file does not follow the storage conventions at all.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, localcontext
from pathlib import Path

from recovery.state import FillRow, OrderRow, StateFile, StateReadError, order_number, read_state

__all__ = ["OPEN_STATUSES", "PAIRS", "STATUSES", "Violation", "check_file", "check_state"]

# The pairs the crash tests trade, as (base, quote) in the asset names the balances use. Hard-coded on purpose:
# reading the engine's instrument catalogue would make the ledger agree with a catalogue bug.
PAIRS: dict[str, tuple[str, str]] = {
    "BTC/USD": ("BTC", "USD"),
    "BTC/USDT": ("BTC", "USDT"),
    "ETH/BTC": ("ETH", "BTC"),
    "ETHUSD": ("ETH", "USD"),
}
OPEN_STATUSES = frozenset({"pending_new", "new", "partially_filled"})
STATUSES = OPEN_STATUSES | {"filled", "canceled", "rejected", "expired"}
# Exact arithmetic: any rounding in the ledger itself would be a false alarm (or hide a real one).
_EXACT = Context(prec=100, traps=[Inexact])


@dataclass(frozen=True)
class Violation:
    """One broken invariant: its kind (see the module docstring) and a one-line reason."""

    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _balances(state: StateFile) -> Iterator[Violation]:
    opening = state.kv.get("opening_balances", {})
    if not isinstance(opening, dict):
        yield Violation("balances", f"kv opening_balances is not an object: {opening!r}")
        return
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for asset, amount in opening.items():
        expected[asset] += Decimal(str(amount))
    for fill in state.fills:
        assets = PAIRS.get(fill.pair)
        if assets is None:
            yield Violation("balances", f"fill {fill.trade_id}: pair {fill.pair} is not known to the ledger")
            continue
        base, quote = assets
        sign = 1 if fill.side == "buy" else -1
        if fill.side not in ("buy", "sell"):
            yield Violation("balances", f"fill {fill.trade_id}: side {fill.side!r}")
            continue
        expected[base] += sign * fill.qty
        expected[quote] -= sign * fill.qty * fill.price
        expected[fill.fee_asset] -= fill.fee
    stored = {b.asset: b.total for b in state.balances}
    if not state.balances and not state.fills:
        return  # killed before the first balances were written: nothing has happened to the account yet
    for asset in sorted(set(expected) | set(stored)):
        want, have = expected.get(asset, Decimal(0)), stored.get(asset, Decimal(0))
        if want != have:
            yield Violation(
                "balances",
                f"{asset}: stored {_fmt(have)}, opening + fills - fees give {_fmt(want)} (off by {_fmt(have - want)})",
            )
        if have < 0:
            yield Violation("balances", f"{asset}: negative total {_fmt(have)}")


def _duplicates(items: Iterable[object]) -> list[object]:
    return [item for item, n in Counter(items).items() if n > 1]


def _ids(state: StateFile) -> Iterator[Violation]:
    for trade_id in _duplicates(f.trade_id for f in state.fills):
        yield Violation("ids", f"trade id {trade_id} is stored twice")
    for client_id in _duplicates(o.client_id for o in state.orders):
        yield Violation("ids", f"client order id {client_id} is stored twice")
    numbers = [n for n in (order_number(o.client_id) for o in state.orders) if n is not None]
    for number in _duplicates(numbers):
        owners = sorted(o.client_id for o in state.orders if order_number(o.client_id) == number)
        yield Violation("ids", f"order number {number} is used by {', '.join(owners)}")
    for trade_id in _duplicates(t for o in state.orders for t in set(o.trade_ids)):
        yield Violation("ids", f"trade id {trade_id} is listed by more than one order")
    for order in state.orders:
        for trade_id in _duplicates(order.trade_ids):
            yield Violation("ids", f"order {order.client_id} lists trade id {trade_id} twice")


def _order_vs_fills(order: OrderRow, fills: list[FillRow]) -> Iterator[Violation]:
    name = f"order {order.client_id} ({order.status})"
    filled = sum((f.qty for f in fills), Decimal(0))
    cost = sum((f.qty * f.price for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    if filled != order.filled_qty:
        yield Violation("order_vs_fills", f"{name}: filled_qty {_fmt(order.filled_qty)}, its fills sum {_fmt(filled)}")
    if cost != order.filled_cost:
        yield Violation("order_vs_fills", f"{name}: filled_cost {_fmt(order.filled_cost)}, its fills cost {_fmt(cost)}")
    if fees != order.fees:
        yield Violation("order_vs_fills", f"{name}: fees {_fmt(order.fees)}, its fills' fees sum {_fmt(fees)}")
    listed, actual = set(order.trade_ids), {f.trade_id for f in fills}
    if listed != actual:
        extra, missing = sorted(listed - actual), sorted(actual - listed)
        yield Violation("order_vs_fills", f"{name}: trade_ids without a fill {extra}, fills not in trade_ids {missing}")
    for fill in fills:
        if (fill.pair, fill.side, fill.strategy) != (order.pair, order.side, order.strategy):
            yield Violation(
                "order_vs_fills",
                f"fill {fill.trade_id} is {fill.pair} {fill.side} {fill.strategy}, its order is "
                f"{order.pair} {order.side} {order.strategy}",
            )
    qty, status = order.qty, order.status
    if status not in STATUSES:
        yield Violation("order_vs_fills", f"{name}: unknown status")
    elif order.filled_qty > qty:
        yield Violation("order_vs_fills", f"{name}: filled_qty {_fmt(order.filled_qty)} exceeds qty {_fmt(qty)}")
    elif (status == "filled") != (order.filled_qty == qty):
        yield Violation("order_vs_fills", f"{name}: filled_qty {_fmt(order.filled_qty)} of qty {_fmt(qty)}")
    elif status == "partially_filled" and order.filled_qty == 0:
        yield Violation("order_vs_fills", f"{name}: nothing filled")


def _orders(state: StateFile) -> Iterator[Violation]:
    by_order: dict[str, list[FillRow]] = defaultdict(list)
    for fill in state.fills:
        by_order[fill.client_id].append(fill)
    orders = {o.client_id: o for o in state.orders}
    for client_id, fills in sorted(by_order.items()):
        order = orders.get(client_id)
        if order is None:
            yield Violation("orphan_fill", f"fill {fills[0].trade_id} names order {client_id}, which is not stored")
            continue
        for fill in fills:
            if fill.ts_ns < order.created_ts_ns:
                yield Violation(
                    "fill_before_order",
                    f"fill {fill.trade_id} at {fill.ts_ns} is dated {(order.created_ts_ns - fill.ts_ns) / 1e9:g} s "
                    f"before its order {client_id} ({order.created_ts_ns})",
                )
    for order in state.orders:
        yield from _order_vs_fills(order, by_order.get(order.client_id, []))


def _positions(state: StateFile) -> Iterator[Violation]:
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for fill in state.fills:
        expected[(fill.strategy, fill.pair)] += fill.qty if fill.side == "buy" else -fill.qty
    stored = {(p.strategy, p.pair): p.qty for p in state.positions}
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key, Decimal(0)), stored.get(key, Decimal(0))
        if want != have:
            yield Violation("positions", f"{key[0]}/{key[1]}: stored qty {_fmt(have)}, its fills sum to {_fmt(want)}")


def _equity(state: StateFile) -> Iterator[Violation]:
    for before, after in zip(state.equity, state.equity[1:], strict=False):
        if after.ts_ns < before.ts_ns:
            yield Violation(
                "equity", f"equity point {after.id} at {after.ts_ns} is earlier than point {before.id} ({before.ts_ns})"
            )
            return  # one is enough: the rest of a reordered curve would repeat it


def _cursor(state: StateFile, events: int | None) -> Iterator[Violation]:
    cursor = state.kv.get("cursor", 0)
    if not isinstance(cursor, int) or isinstance(cursor, bool):
        yield Violation("cursor", f"kv cursor is not an integer: {cursor!r}")
    elif cursor < 0 or (events is not None and cursor > events):
        yield Violation("cursor", f"kv cursor {cursor} is outside the data (0..{events})")


def check_state(state: StateFile, events: int | None = None) -> list[Violation]:
    """Every broken invariant of ``state``; ``events`` (the data's length) bounds the cursor when given."""
    if state.empty:
        return []
    with localcontext(_EXACT):
        try:
            return [
                *_balances(state),
                *_ids(state),
                *_orders(state),
                *_positions(state),
                *_equity(state),
                *_cursor(state, events),
            ]
        except Inexact:  # pragma: no cover - 100 digits hold any product of two stored amounts
            return [Violation("unreadable", "an amount needs more than 100 digits")]


def check_file(path: Path, events: int | None = None) -> list[Violation]:
    """:func:`check_state` of the file at ``path``; a file that cannot be read is one ``unreadable`` violation."""
    try:
        state = read_state(path)
    except StateReadError as exc:
        return [Violation("unreadable", str(exc))]
    return check_state(state, events)
