"""The journal: everything the engine must remember goes through here to the single store writer.

It is the order manager's listener (order intents made durable before they are sent, order changes, fills,
positions, balances, round trips, anomalies), the append-only event log, and the source of change notifications
(topics such as ``balance`` or ``orders``) for the MCP server. Records are copied before they are queued: the
writer thread must never see an object the event loop is still changing.

Staging (backtests, where intents need not be durable before the send): instead of queueing a write per order
event and per fill, the journal keeps the orders, positions and balances that changed (their latest state is
all a row needs) and the new fills and round trips, and hands them to the writer in bulk, encoded at that
moment, whenever anything else is queued, flushed or read (:meth:`StoreWriter.set_stager`). An order's intent,
acceptance and fill then cost one row instead of three, nothing is copied per event, and the writer runs a
handful of GIL-free statements per hand-over instead of thousands of small ones (see
:mod:`engine.persistence.bulk`). What ends up stored is the same.
"""

import copy
import dataclasses
import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from engine.domain.orders import ClientOrderId, Fill, Order
from engine.domain.positions import Position
from engine.persistence import FillValueRow, RoundTripRow, Store, StoreWriter
from engine.persistence.rows import (
    EncodedRows,
    encode_balances,
    encode_equity,
    encode_fill_values,
    encode_fills,
    encode_orders,
    encode_positions,
    encode_round_trips,
)
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio
from engine.redaction import Redactor

__all__ = ["GUARD_TRIGGERED", "ORDER_REFUSED", "RECENT_FILLS", "ChangeCallback", "Journal"]

ChangeCallback = Callable[[set[str]], None]
RECENT_FILLS = 1000
ORDER_REFUSED = "order_refused"
GUARD_TRIGGERED = "guard_triggered"
"""The event kind of an order refused before it was sent (:meth:`Journal.order_refused`)."""


def jsonable(value: object) -> Any:
    """Decimals as strings, containers recursively; what the event log stores."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        # The store keeps no floats; a float that reaches the event log (an argument a client sent) is kept as
        # the decimal text it printed as.
        return (
            repr(value)
            if value != value or value in (float("inf"), float("-inf"))
            else format(Decimal(repr(value)), "f")
        )
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)


class Journal:
    """Persistence, event log and change notifications, on behalf of the trading core."""

    def __init__(
        self,
        writer: StoreWriter,
        portfolio: Portfolio,
        clock: Callable[[], int],
        *,
        durable: bool,
        stage: bool | None = None,
        wall_clock: Callable[[], int] = time.time_ns,
        redactor: Redactor | None = None,
    ) -> None:
        """Args:
        durable: order intents are committed before :meth:`order_intent` returns.
        stage: hand order, fill, position, balance and round-trip writes to the writer in bulk (see the
            module's docstring); by default when not ``durable``.
        wall_clock: the wall clock that stamps audit records beside ``clock`` (the market's time in a replay).
        redactor: masks secrets in event payloads (default: the secrets in the environment).
        """
        self.writer = writer
        self.portfolio = portfolio
        self.clock = clock
        self.wall_clock = wall_clock
        self.redactor = redactor or Redactor()
        self.durable = durable
        self.dirty: set[str] = set()
        self.subscribers: list[ChangeCallback] = []
        self.anomalies = 0
        # The latest fills, newest last: get_trades answers from here (at once, and in agreement with the books
        # in memory) instead of waiting for the writer to catch up during a busy run.
        self.recent_fills: deque[Fill] = deque(maxlen=RECENT_FILLS)
        self.last_anomaly = ""
        self.staging = (not durable) if stage is None else stage
        self._orders: dict[ClientOrderId, Order] = {}
        self._fills: list[Fill] = []
        self._positions: dict[tuple[str, str], Position] = {}
        self._balances_changed = False
        self._trips: list[ClosedTrade] = []
        self._fill_values: list[FillValueRow] = []
        if self.staging:
            writer.set_stager(self._take_staged, atomic=True)
        # Round trips stored before they had account-currency values: those of pairs quoted in the account
        # currency get their quote figures (the database does not record the account currency; the engine does).
        currency = portfolio.quote_currency
        quoted = sorted(pair for pair, inst in portfolio.instruments.items() if inst.quote == currency)
        writer.submit(partial(Store.value_legacy_round_trips, value_currency=currency, pairs=quoted))

    # -- OrderListener -------------------------------------------------------------------------------------
    async def order_intent(self, order: Order) -> None:
        if self.staging:
            self._orders[order.client_id] = order
        else:
            snapshot = _copy_order(order)
            self.writer.submit(lambda store: store.upsert_order(snapshot))
        if self.durable:
            await self.writer.flush()
        self.dirty.add("orders")

    def order_changed(self, order: Order) -> None:
        if self.staging:
            self._orders[order.client_id] = order
        else:
            snapshot = _copy_order(order)
            self.writer.submit(lambda store: store.upsert_order(snapshot))
        self.dirty.add("orders")

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        self.recent_fills.append(fill)
        # The values a converted fill was booked at: a restart re-books it at these, not at its own marks.
        value = self.portfolio.fill_values.get(fill.trade_id) if self.portfolio.fill_values else None
        value_row = (
            None
            if value is None
            else FillValueRow(fill.trade_id, value.fee, value.realized, self.portfolio.quote_currency)
        )
        if self.staging:
            self._orders[order.client_id] = order
            self._fills.append(fill)
            if value_row is not None:
                self._fill_values.append(value_row)
            self._positions[(position.strategy, position.pair)] = position
            self._balances_changed = True
            if closed is not None:
                self._trips.append(closed)
            self.dirty.update(("orders", "balance", "positions", "trades", "performance"))
            return
        # The fills table is the record of trade ids; the stored position row is a summary (for `status`), so
        # its growing id set is not copied or rewritten on every fill.
        pos = dataclasses.replace(position, trade_ids=set())
        balances = self.portfolio.balances.assets()
        snapshot = _copy_order(order)

        def write(store: Store) -> None:
            # One unit of work: the order's new state, its fill, the position and the balances go together.
            store.upsert_order(snapshot)
            store.add_fill(fill)
            if value_row is not None:
                store.add_fill_value(value_row)
            store.upsert_position(pos)
            store.set_balances(balances)
            if closed is not None:
                store.add_round_trip(_trip_row(closed))

        self.writer.submit(write)
        self.dirty.update(("orders", "balance", "positions", "trades", "performance"))

    def take_rows(self) -> list[EncodedRows]:
        """The staged writes, encoded now from the live objects (empty when nothing is staged); clears the stage.

        For a caller that hands them to the writer with its own rows in one operation (the run loop's equity
        chunks). Call it on this journal's thread.
        """
        if not (self._orders or self._fills or self._positions or self._balances_changed or self._trips):
            return []
        # Cleared before encoding: a value that cannot be encoded fails this hand-over once, not every one after.
        orders, fills, positions, trips = self._orders, self._fills, self._positions, self._trips
        fill_values = self._fill_values
        balances_changed = self._balances_changed
        self._orders, self._fills, self._positions, self._trips = {}, [], {}, []
        self._fill_values = []
        self._balances_changed = False
        batch: list[EncodedRows] = []
        if orders:
            batch.append(encode_orders(orders.values()))
        if fills:
            batch.append(encode_fills(fills))
        if fill_values:
            batch.append(encode_fill_values(fill_values))
        if positions:
            # As in the unstaged path: the position row is a summary; the fills table records the trade ids.
            batch.append(encode_positions(positions.values(), trade_ids=False))
        if balances_changed:
            batch.append(encode_balances(self.portfolio.balances.assets()))
        if trips:
            batch.append(encode_round_trips(trips))
        return batch

    def equity_points(self, ts_ns: list[int], equity: list[Decimal]) -> None:
        """Queue points of the equity curve, together with whatever is staged, as one write (one statement for
        the writer: see :mod:`engine.persistence.bulk`)."""
        self._submit_rows(lambda: [*self.take_rows(), *([encode_equity(ts_ns, equity)] if ts_ns else [])])

    def _submit_rows(self, encode: Callable[[], list[EncodedRows]]) -> None:
        try:
            batch = encode()
        except Exception as exc:
            # A value that cannot be stored (a NaN, say) is reported like any failed write, by the next flush.
            failure = exc

            def fail(store: Store) -> None:
                raise failure

            self.writer.submit(fail)
            return
        if batch:
            self.writer.submit(partial(Store.write_rows, batch=batch), atomic=True)

    def _take_staged(self) -> Callable[[Store], None] | None:
        """The staged writes as one (atomic) operation, or None: the writer's stager (see the module's docstring)."""
        batch = self.take_rows()
        return partial(Store.write_rows, batch=batch) if batch else None

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        self.anomalies += 1
        self.last_anomaly = f"{kind}: {detail}"
        self.event(kind, "engine", {"detail": detail, **payload})

    def order_refused(self, strategy: str, pair: str, side: str, qty: Decimal | None, rule: str, reason: str) -> None:
        """Record an order refused before it was sent: an ``order_refused`` event (source ``risk``), stamped with
        the engine's clock (the decision candle's close in a replay). The trader's :class:`RefusalSink`."""
        payload = {"strategy": strategy, "pair": pair, "side": side, "qty": qty, "rule": rule, "reason": reason}
        self.event(ORDER_REFUSED, "risk", payload)

    def guard_triggered(self, strategy: str, pair: str, rule: str, qty: Decimal, detail: str) -> None:
        """Record a position guard that triggered (stop-loss, take-profit, trailing or time stop): a
        ``guard_triggered`` event naming the rule, the figures and what the engine does (sell ``qty`` at market)."""
        payload = {
            "strategy": strategy,
            "pair": pair,
            "rule": rule,
            "detail": detail,
            "action": f"sell {qty} at market",
        }
        self.event(GUARD_TRIGGERED, "risk", payload)

    # -- event log and state ---------------------------------------------------------------------------------
    def event(self, kind: str, source: str, payload: Mapping[str, object]) -> None:
        """Append to the audit log, stamped with the engine's clock and the wall clock; every string in it passes
        through the redactor first (text from the exchange or a client may carry a secret)."""
        ts, wall = self.clock(), self.wall_clock()
        data = self.redactor.payload(jsonable(payload))
        assert isinstance(data, dict)
        self.writer.submit(lambda store: store.append_event(ts, kind, self.redactor.text(source), data, wall))
        self.dirty.add("events")

    def set_kv(self, key: str, value: object) -> None:
        data = jsonable(value)
        self.writer.submit(lambda store: store.set_kv(key, data))

    def mark_dirty(self, *topics: str) -> None:
        self.dirty.update(topics)

    def publish(self) -> None:
        """Tell subscribers which topics changed since the last call (called by the runtime's notifier loop).

        Staged writes go to the writer first, so that what subscribers are told about is on its way to the
        database even for a reader on another connection (this runs about every 0.2 s).
        """
        if self.staging:
            self._submit_rows(self.take_rows)
        if not self.dirty:
            return
        topics, self.dirty = self.dirty, set()
        for callback in list(self.subscribers):
            callback(topics)

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        self.subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self.subscribers:
                self.subscribers.remove(callback)

        return unsubscribe


def _trip_row(closed: ClosedTrade) -> RoundTripRow:
    return RoundTripRow(
        pair=closed.pair,
        strategy=closed.strategy,
        entry_ts_ns=closed.entry_ts_ns,
        exit_ts_ns=closed.exit_ts_ns,
        qty=closed.qty,
        entry_price=closed.entry_price,
        exit_price=closed.exit_price,
        pnl=closed.pnl,
        fees=closed.fees,
        pnl_value=closed.pnl_value,
        fees_value=closed.fees_value,
        value_currency=closed.value_currency,
    )


def _copy_order(order: Order) -> Order:
    snapshot = copy.copy(order)
    snapshot.trade_ids = set(order.trade_ids)
    return snapshot
