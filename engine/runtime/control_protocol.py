"""The control socket's wire format and call table, without I/O: what the server and the client both follow.

One JSON object per line (UTF-8). The server speaks first::

    {"hello": {"protocol": 1, "mode": "paper", "venue": "paper", "pairs": [...], "strategies": [...]}}

A call and its answer (calls may overlap; answers come in any order, matched by ``id``)::

    {"id": 7, "call": "orders", "args": {"open_only": true, "limit": 20}}
    {"id": 7, "ok": {...the view, as JSON...}}
    {"id": 7, "error": {"kind": "InvalidRequest", "message": "limit must be between 1 and 10000"}}

A long call may report progress first (``{"id": 7, "progress": [3, 7, "strategies"]}``); after a ``subscribe``
call the server pushes ``{"changes": ["orders", "status"]}`` whenever topics change. Decimals travel as strings
(the views serialise them so; arguments are parsed by the facade, which accepts decimal text).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from engine.errors import FacadeError, InvalidRequest, LimitExceeded, NotAllowed, NotFound
from engine.runtime.markets_view import MarketsView
from engine.runtime.views import (
    BalanceView,
    DiagnosisView,
    EmergencyStopView,
    EventView,
    MarketView,
    OrdersView,
    OrderView,
    PerformanceView,
    PositionsView,
    RiskView,
    StatusView,
    StrategiesView,
    StrategyView,
    TradesView,
    TradingStateView,
    TuneResultView,
)

__all__ = [
    "CALLS",
    "MAX_LINE",
    "PROTOCOL",
    "Call",
    "ControlProtocolError",
    "check_args",
    "decode",
    "encode",
    "error_from_wire",
    "error_to_wire",
]

PROTOCOL = 1
MAX_LINE = 1 << 20  # a call; answers may be larger (the client allows more)
Kind = Literal["read", "change", "stop"]


class ControlProtocolError(Exception):
    """A line that is not a message of this protocol (the connection is closed)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One facade method on the socket: its kind (reads are admitted within a budget; changes and the emergency
    stop never wait for it), its arguments with their JSON types (all optional unless ``required``), and the
    view its result is (None: nothing; ``list`` of EventView for ``events``)."""

    kind: Kind
    args: Mapping[str, tuple[type, ...]]
    required: tuple[str, ...] = ()
    result: type[BaseModel] | None = None
    many: bool = False


_STR, _INT, _BOOL, _DICT = (str,), (int,), (bool,), (dict,)
_OPT_STR = (str, type(None))
CALLS: dict[str, Call] = {
    "status": Call("read", {}, result=StatusView),
    "balance": Call("read", {}, result=BalanceView),
    "positions": Call("read", {}, result=PositionsView),
    "orders": Call("read", {"open_only": _BOOL, "limit": _INT}, result=OrdersView),
    "trades": Call("read", {"limit": _INT}, result=TradesView),
    "performance": Call("read", {"strategy": _OPT_STR, "pair": _OPT_STR}, result=PerformanceView),
    "strategies": Call("read", {}, result=StrategiesView),
    "strategy": Call("read", {"name": _STR}, ("name",), result=StrategyView),
    "risk": Call("read", {}, result=RiskView),
    "market": Call("read", {"pair": _STR}, ("pair",), result=MarketView),
    # size travels as plain decimal text (the client sends numbers so) or a JSON number
    "markets": Call("read", {"quote": _STR, "top": _INT, "size": (str, int, float)}, result=MarketsView),
    "events": Call("read", {"limit": _INT, "kind": _OPT_STR}, result=EventView, many=True),
    "diagnose": Call("read", {}, result=DiagnosisView),
    "tune_strategy": Call(
        "change",
        {"name": _STR, "params": _DICT, "preview": _BOOL, "source": _STR},
        ("name", "params", "preview", "source"),
        result=TuneResultView,
    ),
    "set_strategy_enabled": Call(
        "change", {"name": _STR, "enabled": _BOOL, "source": _STR}, ("name", "enabled", "source"), result=StrategyView
    ),
    "pause": Call("change", {"source": _STR, "reason": _STR}, ("source",), result=TradingStateView),
    "resume": Call("change", {"source": _STR}, ("source",), result=TradingStateView),
    "set_risk_limits": Call("change", {"changes": _DICT, "source": _STR}, ("changes", "source"), result=RiskView),
    "record_event": Call("change", {"kind": _STR, "source": _STR, "payload": _DICT}, ("kind", "source", "payload")),
    # A client's (the socket is never the operator, so no ``by`` travels here).
    "cancel_order": Call("change", {"client_id": _STR, "source": _STR}, ("client_id", "source"), result=OrderView),
    "close_position": Call(
        "change", {"pair": _STR, "strategy": _OPT_STR, "source": _STR}, ("pair", "source"), result=OrdersView
    ),
    "emergency_stop": Call(
        "stop", {"flatten": _BOOL, "source": _STR, "reason": _STR}, ("flatten", "source"), result=EmergencyStopView
    ),
}

_ERRORS: dict[str, type[FacadeError]] = {
    cls.__name__: cls for cls in (NotFound, InvalidRequest, LimitExceeded, NotAllowed, FacadeError)
}


def check_args(name: str, args: object) -> dict[str, Any]:
    """The arguments of a call to ``name``, checked against its table entry.

    Raises:
        InvalidRequest: an unknown call, unknown or missing arguments, or a value of the wrong JSON type.
    """
    call = CALLS.get(name)
    if call is None:
        raise InvalidRequest(f"unknown call {name!r}")
    if not isinstance(args, dict):
        raise InvalidRequest(f"{name}: args must be an object")
    unknown = sorted(set(args) - set(call.args))
    if unknown:
        raise InvalidRequest(f"{name}: unknown argument(s) {', '.join(unknown)}")
    missing = [key for key in call.required if key not in args]
    if missing:
        raise InvalidRequest(f"{name}: missing argument(s) {', '.join(missing)}")
    for key, value in args.items():
        allowed = call.args[key]
        # bool is an int in Python: an int argument must not accept true/false.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise InvalidRequest(f"{name}: {key} has the wrong type")
    return dict(args)


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as a line (Decimals and other non-JSON values were made text by the views beforehand)."""
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line as a message.

    Raises:
        ControlProtocolError: not a JSON object.
    """
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ControlProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ControlProtocolError("a message must be a JSON object")
    return message


def error_to_wire(exc: BaseException) -> dict[str, str]:
    """A refusal as it travels: the facade's own kinds keep their name; anything else is the engine's failure."""
    if isinstance(exc, FacadeError):
        kind = type(exc).__name__ if type(exc).__name__ in _ERRORS else "FacadeError"
        return {"kind": kind, "message": str(exc)}
    return {"kind": "FacadeError", "message": f"the engine could not answer ({type(exc).__name__})"}


def error_from_wire(error: object) -> FacadeError:
    """The refusal the server sent, as the facade's exception (unknown kinds become :class:`FacadeError`)."""
    if not isinstance(error, dict):
        return FacadeError("the engine sent a malformed error")
    cls = _ERRORS.get(str(error.get("kind")), FacadeError)
    return cls(str(error.get("message", "")))
