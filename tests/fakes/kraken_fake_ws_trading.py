"""The fake Kraken's WebSocket v2 trading methods: add, amend, cancel, cancel all, dead man's switch, batch add.

Each answers on the requesting session before the executions it causes are published (``fake.holding()``), the
order Kraken's own messages arrive in.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fakes.kraken_fake_market import FakeOrder, ids_of, rfc3339

if TYPE_CHECKING:
    from fakes.kraken_fake_ws import WsSession

__all__ = ["TRADING"]


def _rfc3339_ns(text: str) -> int:
    """``expire_time`` (RFC3339 with a UTC offset) as UNIX nanoseconds, read apart from the engine's parser."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    since = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (since.days * 86_400 + since.seconds) * 1_000_000_000 + since.microseconds * 1_000


def _order_ref(session: "WsSession", params: dict[str, Any]) -> tuple[FakeOrder | None, dict[str, Any]]:
    market = session.fake.market
    if params.get("order_id") is not None:
        return market.find(txid=str(params["order_id"])), {"order_id": params["order_id"]}
    if params.get("cl_ord_id") is not None:
        return market.find(cl_ord_id=str(params["cl_ord_id"])), {"cl_ord_id": params["cl_ord_id"]}
    return None, {}


def _add_order(session: "WsSession", params: dict[str, Any], req_id: object) -> None:
    fake = session.fake
    if fake.system_status in ("maintenance", "cancel_only"):
        session._reply("add_order", req_id, error=f"EService:Market in {fake.system_status} mode")
        return
    expire_time = params.get("expire_time")
    try:
        expire_ns = None if expire_time is None else _rfc3339_ns(str(expire_time))
    except ValueError:
        session._reply("add_order", req_id, error="EGeneral:Invalid arguments:expire_time")
        return
    silent = fake.faults.ws_add_order_silent > 0
    if silent:
        fake.faults.ws_add_order_silent -= 1
    with fake.holding() as release:
        result = fake.market.place(
            pair_name=str(params.get("symbol", "")),
            side=str(params.get("side", "")),
            ordertype=str(params.get("order_type", "")),
            vol=Decimal(str(params.get("order_qty", "0"))),
            price=None if params.get("limit_price") is None else Decimal(str(params["limit_price"])),
            cl_ord_id=params.get("cl_ord_id"),
            userref=params.get("order_userref"),
            post_only=bool(params.get("post_only", False)),
            validate=bool(params.get("validate", False)),
            time_in_force=str(params.get("time_in_force") or "gtc").upper(),
            expire_ns=expire_ns,
        )
        if silent:
            pass
        elif result.error is not None:
            session._reply("add_order", req_id, error=result.error)
        else:
            out: dict[str, Any] = {}
            if result.order is not None:
                out["order_id"] = result.order.txid
            for key in ("cl_ord_id", "order_userref"):
                if params.get(key) is not None:
                    out[key] = params[key]
            session._reply("add_order", req_id, out)
        release()


def _amend_order(session: "WsSession", params: dict[str, Any], req_id: object) -> None:
    order, ref = _order_ref(session, params)
    if order is None or order.status != "open":
        session._reply("amend_order", req_id, error="EOrder:Unknown order")
        return
    with session.fake.holding() as release:
        qty = params.get("order_qty")
        price = params.get("limit_price")
        error = session.fake.market.amend(
            order, None if qty is None else Decimal(str(qty)), None if price is None else Decimal(str(price))
        )
        if error is not None:
            session._reply("amend_order", req_id, error=error)
        else:
            session._reply("amend_order", req_id, {"amend_id": f"A{order.txid}", **ref})
        release()


def _cancel_order(session: "WsSession", params: dict[str, Any], req_id: object) -> None:
    market = session.fake.market
    targets = [("order_id", i) for i in params.get("order_id") or []]
    targets += [("cl_ord_id", i) for i in params.get("cl_ord_id") or []]
    for key, value in targets:
        order = market.find(txid=value) if key == "order_id" else market.find(cl_ord_id=value)
        with session.fake.holding() as release:
            if order is None or order.status != "open":
                session._reply("cancel_order", req_id, error="EOrder:Unknown order")
            else:
                market.cancel(order)
                session._reply("cancel_order", req_id, {key: value})
            release()


def _cancel_all(session: "WsSession", params: dict[str, Any], req_id: object) -> None:
    with session.fake.holding() as release:
        count = session.fake.market.cancel_all()
        session._reply("cancel_all", req_id, {"count": count})
        release()


def _cancel_after(session: "WsSession", params: dict[str, Any], req_id: object) -> None:
    now = session.fake.clock_ns()
    trigger = session.fake.arm_dead_man_switch(int(params.get("timeout", 0)))
    session._reply(
        "cancel_all_orders_after",
        req_id,
        {
            "currentTime": rfc3339(now)[:19] + "Z",
            "triggerTime": rfc3339(trigger)[:19] + "Z" if trigger else "0",
        },
    )


def _batch_add(session: "WsSession", params: dict[str, Any], req_id: object) -> None:
    fake = session.fake
    symbol = str(params.get("symbol", ""))
    orders = params.get("orders") or []
    market = fake.market
    for spec in orders:
        price = spec.get("limit_price")
        error = market.check(
            market.pair(symbol),
            str(spec.get("side")),
            str(spec.get("order_type")),
            Decimal(str(spec.get("order_qty"))),
            None if price is None else Decimal(str(price)),
        )
        if error is not None:
            session._reply("batch_add", req_id, error=error)
            return
    with fake.holding() as release:
        results = []
        for spec in orders:
            price = spec.get("limit_price")
            result = fake.market.place(
                pair_name=symbol,
                side=str(spec.get("side")),
                ordertype=str(spec.get("order_type")),
                vol=Decimal(str(spec.get("order_qty"))),
                price=None if price is None else Decimal(str(price)),
                cl_ord_id=spec.get("cl_ord_id"),
                userref=spec.get("order_userref"),
            )
            if result.error is not None:
                session._reply("batch_add", req_id, error=result.error)
                release()
                return
            assert result.order is not None
            results.append({"order_id": result.order.txid, **ids_of(result.order)})
        session._reply("batch_add", req_id, results)
        release()


TRADING: dict[str, Any] = {
    "add_order": _add_order,
    "amend_order": _amend_order,
    "cancel_order": _cancel_order,
    "cancel_all": _cancel_all,
    "cancel_all_orders_after": _cancel_after,
    "batch_add": _batch_add,
}
