"""The operator's channel: ``trading-mcp halt`` and ``trading-mcp resume`` reach the engine without any LLM.

Whoever holds the operator's shell outranks whoever holds the MCP client. A request is a small JSON file beside
the state file (``<db>.operator``), written atomically (a temporary file renamed over it), so the engine never
reads half of one; the latest request wins. A running engine claims it within 0.2 s (renames it to
``<db>.operator.taken``, so a request written meanwhile is never lost), applies it, and deletes the claim; a
stopped engine does the same at its next start, before it trades. A claim found at start (the engine died
while applying it) is applied again: halting and resuming are idempotent.

A request file that cannot be read is treated as a halt: when in doubt, stop.
"""

import glob
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from engine.runtime.facade import EngineFacade

__all__ = [
    "OperatorOrderRequest",
    "OperatorRequest",
    "apply_order_requests",
    "claim_order_requests",
    "claim_request",
    "read_order_answer",
    "request_file_for",
    "withdraw_order_request",
    "write_order_request",
    "write_request",
]

Action = Literal["halt", "resume"]


@dataclass(frozen=True, slots=True)
class OperatorRequest:
    """What the operator asked: halt (optionally flattening every position) or resume, and why."""

    action: Action
    flatten: bool = False
    reason: str = ""
    requested_wall_ns: int = 0


def request_file_for(db_path: Path) -> Path:
    """Where the operator's requests for the engine using ``db_path`` are left."""
    return db_path.with_name(db_path.name + ".operator")


def _claim_file(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".operator.taken")


def write_request(db_path: Path, request: OperatorRequest) -> OperatorRequest | None:
    """Leave ``request`` for the engine (atomically); returns the pending request it replaced, if any.

    Raises:
        OSError: the file cannot be written.
    """
    path = request_file_for(db_path)
    replaced = _read(path) if path.exists() else None
    stamped = OperatorRequest(
        request.action, request.flatten, request.reason, request.requested_wall_ns or time.time_ns()
    )
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(asdict(stamped), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return replaced


def pending_request(db_path: Path) -> OperatorRequest | None:
    """The request waiting for the engine (not yet claimed), if any."""
    path = request_file_for(db_path)
    return _read(path) if path.exists() else None


def claim_request(db_path: Path) -> tuple[OperatorRequest, Path] | None:
    """The next request to apply and its claim file (delete it once applied), or None.

    A claim left by an engine that died while applying it comes first.
    """
    claim = _claim_file(db_path)
    if claim.exists():
        return _read(claim), claim
    path = request_file_for(db_path)
    try:
        os.replace(path, claim)
    except FileNotFoundError:
        return None
    return _read(claim), claim


def _read(path: Path) -> OperatorRequest:
    """The request in ``path``; an unreadable or malformed one is a halt (when in doubt, stop)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return OperatorRequest("halt", reason=f"halted: the operator's request file {path.name} could not be read")
    if not isinstance(data, dict):
        data = {}
    action = data.get("action", "halt")
    stamp = data.get("requested_wall_ns")
    return OperatorRequest(
        action="resume" if action == "resume" else "halt",
        flatten=data.get("flatten") is True,
        reason=str(data.get("reason") or "")[:500],
        requested_wall_ns=stamp if isinstance(stamp, int) else 0,
    )


# -- one order, one position: ``trading-mcp cancel`` and ``trading-mcp close`` ---------------------------------
# Unlike halt and resume (the latest wins), every such request counts: each is a file of its own,
# ``<db>.operator-order.<id>.json``, claimed by renaming it to ``...json.taken`` (so a request is applied once,
# or withdrawn by its writer if no engine took it), applied with the operator's authority, and answered in
# ``<db>.operator-order.<id>.answer`` when its writer waits for the answer. A claim found at start is not applied
# again (a close may have been sent before the engine died): it is answered and recorded as abandoned.

OrderAction = Literal["cancel", "close"]


@dataclass(frozen=True, slots=True)
class OperatorOrderRequest:
    """Cancel one order (``target``: its client id) or close a position (``target``: the pair; ``strategy``
    optional), asked from the operator's shell."""

    action: OrderAction
    target: str
    strategy: str | None = None
    request_id: str = ""
    wants_answer: bool = True


def _order_prefix(db_path: Path) -> str:
    return db_path.name + ".operator-order."


def order_request_file(db_path: Path, request_id: str) -> Path:
    return db_path.with_name(f"{_order_prefix(db_path)}{request_id}.json")


def order_answer_file(db_path: Path, request_id: str) -> Path:
    return db_path.with_name(f"{_order_prefix(db_path)}{request_id}.answer")


def write_order_request(db_path: Path, request: OperatorOrderRequest) -> OperatorOrderRequest:
    """Leave ``request`` for the engine (atomically), with a fresh id; returns it as written.

    Raises:
        OSError: the file cannot be written.
    """
    stamped = OperatorOrderRequest(
        request.action, request.target, request.strategy, f"{time.time_ns()}-{os.getpid()}", request.wants_answer
    )
    path = order_request_file(db_path, stamped.request_id)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(asdict(stamped), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return stamped


def withdraw_order_request(db_path: Path, request_id: str) -> bool:
    """Take back a request no engine claimed yet; False when one already has."""
    try:
        order_request_file(db_path, request_id).unlink()
    except FileNotFoundError:
        return False
    return True


def _read_order(path: Path) -> OperatorOrderRequest | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("action") not in ("cancel", "close"):
        return None
    target, strategy = data.get("target"), data.get("strategy")
    if not isinstance(target, str) or not (strategy is None or isinstance(strategy, str)):
        return None
    request_id = str(data.get("request_id") or path.name)
    return OperatorOrderRequest(data["action"], target[:100], strategy, request_id, data.get("wants_answer") is True)


def answer_order_request(db_path: Path, request: OperatorOrderRequest, ok: bool, message: str) -> None:
    """Leave the engine's answer for the command that waits for it (atomically)."""
    if not request.wants_answer:
        return
    path = order_answer_file(db_path, request.request_id)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"ok": ok, "message": message}), encoding="utf-8")
    os.replace(temporary, path)


def read_order_answer(db_path: Path, request_id: str) -> tuple[bool, str] | None:
    """The engine's answer to a request (and the answer file is removed), or None while there is none."""
    path = order_answer_file(db_path, request_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = {"ok": False, "message": "the engine's answer could not be read; see `trading-mcp status`"}
    path.unlink(missing_ok=True)
    return data.get("ok") is True, str(data.get("message", ""))


def claim_order_requests(db_path: Path) -> list[tuple[OperatorOrderRequest | None, Path, bool]]:
    """The order requests to apply, oldest first, each with its claim file (delete it once applied) and whether
    it is a claim an engine left behind (to be abandoned, not applied again: see above). An engine applies its
    requests one call at a time, so a claim present when it looks was left by an engine that died.

    An unreadable request comes back as None (the caller drops it)."""
    prefix = glob.escape(_order_prefix(db_path))
    found: list[tuple[OperatorOrderRequest | None, Path, bool]] = [
        (_read_order(claim), claim, True) for claim in sorted(db_path.parent.glob(f"{prefix}*.json.taken"))
    ]
    for path in sorted(db_path.parent.glob(f"{prefix}*.json")):
        claim = path.with_name(path.name + ".taken")
        try:
            os.replace(path, claim)
        except FileNotFoundError:
            continue  # withdrawn by its writer meanwhile
        found.append((_read_order(claim), claim, False))
    return found


async def apply_order_requests(db_path: Path, facade: "EngineFacade") -> None:
    """Apply the operator's cancel and close requests with the operator's authority, answering each."""
    from engine.errors import FacadeError

    for request, claim, left_behind in claim_order_requests(db_path):
        if request is None:
            await facade.record_event("operator_request_unreadable", "operator:cli", {"file": claim.name})
            claim.unlink(missing_ok=True)
            continue
        what = {"action": request.action, "target": request.target, "strategy": request.strategy}
        if left_behind:
            message = (
                f"not applied: the engine stopped while applying this {request.action}; "
                "check `trading-mcp status` before asking again"
            )
            await facade.record_event("operator_request_abandoned", "operator:cli", {**what, "result": message})
            ok = False
        else:
            try:
                if request.action == "cancel":
                    order = await facade.cancel_order(request.target, source="operator:cli", by="operator")
                    message = (
                        f"order {order.client_id} is {order.status}"
                        if order.status in ("canceled", "filled", "rejected", "expired")
                        else f"cancel of order {order.client_id} requested; the venue has not confirmed it yet"
                    )
                else:
                    sent = await facade.close_position(
                        request.target, request.strategy, source="operator:cli", by="operator"
                    )
                    message = "sent " + "; ".join(
                        f"market sell {o.client_id} of {o.qty} {o.pair} for {o.strategy}" for o in sent.orders
                    )
                ok = True
            except FacadeError as exc:
                message, ok = str(exc), False
                await facade.record_event("operator_request_refused", "operator:cli", {**what, "error": message})
        answer_order_request(db_path, request, ok, message)
        claim.unlink(missing_ok=True)
