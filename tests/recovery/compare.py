"""A resumed run against the uninterrupted one: replays are deterministic, so the final states must be identical.

Orders and fills are matched by order number (the client order id is ``<random prefix>-<9-digit number>`` and the
prefix differs between two state files). Compared: every fill, every order's terms, status, filled qty, cost and
fees, the balances, the positions, the round trips, and the equity curve (one point per candle, so a candle
processed twice or skipped shows here) with its last point apart. The final cursor is the driver's to check.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from recovery.state import StateFile, order_number, trade_key

__all__ = ["Divergence", "Outcome", "diff_outcomes", "outcome_of"]

Values = tuple[object, ...]


@dataclass(frozen=True)
class Divergence:
    """One category that differs from the uninterrupted run, with its first difference in one line."""

    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


@dataclass(frozen=True)
class Outcome:
    """The comparable final state of one state file, keyed so that two files' rows can be matched."""

    fills: dict[str, Values]
    orders: dict[str, Values]
    balances: dict[str, Values]
    positions: dict[str, Values]
    round_trips: dict[str, Values]
    equity_curve: dict[str, Values]
    last_equity: dict[str, Values]


# The names of each category's values, for the one-line reasons.
FIELDS: dict[str, tuple[str, ...]] = {
    "fills": ("order", "pair", "side", "qty", "price", "fee", "fee_asset", "ts_ns", "liquidity", "strategy"),
    "orders": ("pair", "side", "type", "qty", "limit", "strategy", "status", "filled", "cost", "fees", "created"),
    "balances": ("total", "held"),
    "positions": ("qty", "avg_entry", "realized_pnl", "fees", "opened_ts_ns"),
    "round_trips": ("pair", "strategy", "entry_ts", "exit_ts", "qty", "entry", "exit", "pnl", "fees"),
    "equity_curve": ("ts_ns", "equity"),
    "last_equity": ("ts_ns", "equity"),
}


def _number(client_id: str) -> str:
    number = order_number(client_id)
    return client_id if number is None else str(number)


def outcome_of(state: StateFile) -> Outcome:
    """The comparable part of ``state``."""
    trips = sorted(state.round_trips, key=lambda t: (t.exit_ts_ns, t.strategy, t.pair, t.entry_ts_ns))
    last = state.equity[-1] if state.equity else None
    return Outcome(
        fills={
            trade_key(f.trade_id, f.client_id): (
                _number(f.client_id),
                f.pair,
                f.side,
                f.qty,
                f.price,
                f.fee,
                f.fee_asset,
                f.ts_ns,
                f.liquidity,
                f.strategy,
            )
            for f in state.fills
        },
        orders={
            _number(o.client_id): (
                o.pair,
                o.side,
                o.order_type,
                o.qty,
                o.limit_price,
                o.strategy,
                o.status,
                o.filled_qty,
                o.filled_cost,
                o.fees,
                o.created_ts_ns,
            )
            for o in state.orders
        },
        balances={b.asset: (b.total, b.held) for b in state.balances if b.total or b.held},
        positions={
            f"{p.strategy}/{p.pair}": (p.qty, p.avg_entry, p.realized_pnl, p.fees, p.opened_ts_ns)
            for p in state.positions
        },
        round_trips={
            f"#{i + 1}": (
                t.pair,
                t.strategy,
                t.entry_ts_ns,
                t.exit_ts_ns,
                t.qty,
                t.entry_price,
                t.exit_price,
                t.pnl,
                t.fees,
            )
            for i, t in enumerate(trips)
        },
        equity_curve={f"#{i + 1}": (p.ts_ns, p.equity) for i, p in enumerate(state.equity)},
        last_equity={} if last is None else {"last": (last.ts_ns, last.equity)},
    )


def _one(value: object) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def _show(kind: str, values: Values) -> str:
    return ", ".join(f"{n}={_one(v)}" for n, v in zip(FIELDS[kind], values, strict=False))


def _first_difference(kind: str, got: Mapping[str, Values], want: Mapping[str, Values]) -> str | None:
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    changed = [k for k in want if k in got and got[k] != want[k]]
    if not (missing or extra or changed):
        return None
    counts = f"{len(missing)} missing, {len(extra)} extra, {len(changed)} different of {len(want)}"
    if changed:
        key = changed[0]
        fields = zip(FIELDS[kind], got[key], want[key], strict=False)
        first = f"{key}: " + "; ".join(f"{n} {_one(g)} (uninterrupted {_one(w)})" for n, g, w in fields if g != w)
    elif missing:
        first = f"{missing[0]} missing (uninterrupted: {_show(kind, want[missing[0]])})"
    else:
        first = f"{extra[0]} extra ({_show(kind, got[extra[0]])})"
    return f"{counts}; first {first}"


def _pairs(got: Outcome, want: Outcome) -> Iterator[tuple[str, Mapping[str, Values], Mapping[str, Values]]]:
    for kind in Outcome.__dataclass_fields__:
        yield kind, getattr(got, kind), getattr(want, kind)


def diff_outcomes(got: Outcome, want: Outcome) -> list[Divergence]:
    """One :class:`Divergence` per category in which ``got`` differs from the uninterrupted ``want``."""
    found = []
    for kind, mine, theirs in _pairs(got, want):
        reason = _first_difference(kind, mine, theirs)
        if reason is not None:
            found.append(Divergence(kind, reason))
    return found
