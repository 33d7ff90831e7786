"""What a restart decides before trading resumes: pure functions over the saved state and the configuration.

* **Orders agree with their fills.** The fills table is the record of what traded. An order row that lags its
  fills (written apart from them by an older version, then a crash) is rebuilt from them, so it can never be
  filled twice; a fill that would overfill its order cannot be explained and stops the start with one line.
* **The operator outranks the MCP client.** The limits in force are the saved ones (the MCP client may have
  changed them) unless the operator changed ``[risk.limits]`` since the last start; then the configuration's.
  Either way they are clamped to the caps in force. Strategy parameters likewise: the saved version unless the
  operator changed the strategy's configuration, and clamped to the tuning bounds in force.

Every decision comes with notes (one sentence each) that the engine writes to the event log.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from engine.domain.orders import Fill, Order, OrderStatus, TradeId
from engine.risk.limits import RiskLimits
from engine.strategies.base import ParamError, ParamValue, Strategy

__all__ = ["Decision", "ParamsChoice", "RestartError", "choose_limits", "choose_params", "orders_agreeing_with_fills"]

T = TypeVar("T")
_CLOSED_KEEP = frozenset({OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class RestartError(Exception):
    """The saved state cannot be resumed; the message says why in one line."""


@dataclass(slots=True)
class Decision(Generic[T]):
    """A value chosen at restart and the notes that explain it (for the event log)."""

    value: T
    notes: list[dict[str, object]] = field(default_factory=list)


def orders_agreeing_with_fills(orders: Sequence[Order], fills: Iterable[Fill]) -> Decision[list[Order]]:
    """``orders`` with every row that disagrees with its fills rebuilt from them.

    Raises:
        RestartError: an order's fills add up to more than its quantity, or are for another side or pair.
    """
    by_order: dict[str, list[Fill]] = {}
    for fill in fills:
        by_order.setdefault(fill.client_id, []).append(fill)
    result = Decision[list[Order]]([])
    known = {order.client_id for order in orders}
    for client_id in sorted(set(by_order) - known):
        result.notes.append({"detail": f"fills of order {client_id} have no order row", "client_id": client_id})
    for order in orders:
        own = by_order.get(order.client_id, [])
        ids = {TradeId(f.trade_id) for f in own}
        if ids == order.trade_ids:
            result.value.append(order)
            continue
        result.value.append(_rebuilt(order, own))
        result.notes.append(
            {
                "detail": f"order {order.client_id} was rebuilt from its {len(own)} stored fill(s)",
                "client_id": order.client_id,
                "status_before": order.status.value,
                "filled_before": order.filled_qty,
            }
        )
    return result


def _rebuilt(order: Order, fills: list[Fill]) -> Order:
    qty = sum((f.qty for f in fills), Decimal(0))
    if any(f.side is not order.side or f.pair != order.pair for f in fills):
        raise RestartError(f"order {order.client_id} has fills for another side or pair: the state is not ours")
    if qty > order.qty:
        raise RestartError(f"order {order.client_id} has fills for {qty}, more than its quantity {order.qty}")
    if qty == order.qty:
        status = OrderStatus.FILLED
    elif order.status in _CLOSED_KEEP:
        status = order.status
    elif qty > 0:
        status = OrderStatus.PARTIALLY_FILLED
    else:
        status = order.status
    venue_id = order.venue_order_id or next((f.venue_order_id for f in fills if f.venue_order_id), None)
    return Order(
        client_id=order.client_id,
        pair=order.pair,
        side=order.side,
        order_type=order.order_type,
        qty=order.qty,
        limit_price=order.limit_price,
        created_ts_ns=order.created_ts_ns,
        strategy=order.strategy,
        status=status,
        venue_order_id=venue_id,
        filled_qty=qty,
        filled_cost=sum((f.qty * f.price for f in fills), Decimal(0)),
        fees=sum((f.fee for f in fills), Decimal(0)),
        reason=order.reason,
        updated_ts_ns=max([order.updated_ts_ns, *(f.ts_ns for f in fills)]),
        trade_ids={TradeId(f.trade_id) for f in fills},
    )


def choose_limits(
    configured: RiskLimits,
    caps: RiskLimits,
    saved: Mapping[str, Any] | None,
    saved_configured: Mapping[str, Any] | None,
) -> Decision[RiskLimits]:
    """The limits in force after a restart.

    Args:
        configured: ``[risk.limits]`` now.
        caps: ``[risk.caps]`` now: nothing is ever above them.
        saved: the limits in force when the engine stopped (JSON), or None.
        saved_configured: ``[risk.limits]`` as it was at the last start (JSON), or None (older state files).

    A limit the saved JSON lacks (saved by a version without it, such as ``max_orders_per_minute`` and
    ``price_band_pct``) takes the configuration's value, in both ``saved`` and ``saved_configured``. The
    ``max_orders_per_minute`` window itself is never saved: after a restart it starts empty.
    """
    result = Decision(configured)
    if saved is not None:
        now = configured.model_dump(mode="json")
        operator_changed = (
            saved_configured is not None and RiskLimits.model_validate({**now, **saved_configured}) != configured
        )
        if operator_changed:
            result.notes.append({"detail": "the operator changed [risk.limits]; the configuration's limits apply"})
        else:
            result.value = RiskLimits.model_validate({**now, **saved})
    clamped = {}
    for name in RiskLimits.model_fields:
        value, cap = getattr(result.value, name), getattr(caps, name)
        if value > cap:
            clamped[name] = cap
            result.notes.append({"detail": f"{name} {value} is above the operator's cap {cap}: clamped", "limit": name})
    if clamped:
        result.value = result.value.model_copy(update=clamped)
    return result


@dataclass(slots=True)
class ParamsChoice:
    """A strategy's parameters and enabled flag after a restart, why, and how to save them.

    ``save_as``: ``"config"`` when the configuration's values apply anew (first start, a new strategy, or the
    operator changed them), ``"restart-clamp"`` when saved values were clamped, None when nothing changed.
    """

    values: dict[str, ParamValue]
    enabled: bool
    save_as: str | None
    notes: list[dict[str, object]] = field(default_factory=list)


def choose_params(
    strategy: type[Strategy],
    configured: tuple[Mapping[str, object], bool],
    saved: tuple[Mapping[str, object], bool] | None,
    saved_configured: tuple[Mapping[str, object], bool] | None,
    bounds: Mapping[str, tuple[Decimal | None, Decimal | None]],
) -> ParamsChoice:
    """A strategy's parameters and whether it is enabled, after a restart.

    The saved ones (the MCP client may have tuned them) unless the operator changed the strategy's configuration
    since it was last applied; then the configuration's. Values that differ from the configuration's (tuned
    ones) are clamped into the tuning bounds in force: the operator may have narrowed them. The configuration's
    own values are the operator's and are never clamped.

    Args:
        strategy: the strategy class (its declared parameters and rules).
        configured: ``(params, enabled)`` of its ``[[strategies]]`` entry now.
        saved: its latest saved ``(params, enabled)`` (any source), or None.
        saved_configured: its latest version saved from the configuration, or None (older state files).
        bounds: the operator's ``[tuning.bounds]`` for it: name -> (minimum, maximum).

    Raises:
        ParamError: the configured parameters themselves are invalid (the configuration check prevents it).
    """
    from_config = strategy.validate(configured[0], base=None)
    if saved is None:
        return ParamsChoice(from_config, configured[1], "config")
    kept = _valid_or_none(strategy, saved[0])
    if kept is None:
        detail = "the saved parameters are no longer valid; the configuration's apply"
        return ParamsChoice(from_config, configured[1], "config", [{"detail": detail}])
    if saved_configured is not None and (
        (_valid_or_none(strategy, saved_configured[0]), saved_configured[1]) != (from_config, configured[1])
    ):
        detail = "the operator changed the strategy's configuration since the last start; it applies"
        return ParamsChoice(from_config, configured[1], "config", [{"detail": detail}])
    choice = ParamsChoice(kept, saved[1], None)
    clamped: dict[str, ParamValue] = {}
    for name, (low, high) in bounds.items():
        value = kept.get(name)
        if value is None or isinstance(value, bool) or value == from_config.get(name):
            continue
        if low is not None and value < low:
            clamped[name] = math.ceil(low) if isinstance(value, int) else low
        elif high is not None and value > high:
            clamped[name] = math.floor(high) if isinstance(value, int) else high
    if not clamped:
        return choice
    try:
        choice.values = strategy.validate(clamped, base=kept)
    except ParamError as exc:
        detail = f"clamping the tuned parameters to the tuning bounds breaks a rule ({exc}); the configuration's apply"
        return ParamsChoice(from_config, configured[1], "config", [{"detail": detail}])
    choice.save_as = "restart-clamp"
    for name, value in clamped.items():
        choice.notes.append(
            {"detail": f"{name} {kept[name]} is outside the tuning bounds: clamped to {value}", "param": name}
        )
    return choice


def _valid_or_none(strategy: type[Strategy], values: Mapping[str, object]) -> dict[str, ParamValue] | None:
    try:
        return strategy.validate(values, base=None)
    except ParamError:
        return None
