"""The operator's channel: ``trading-mcp halt`` and ``trading-mcp resume`` reach the engine without any LLM.

Whoever holds the operator's shell outranks whoever holds the MCP client. A request is a small JSON file beside
the state file (``<db>.operator``), written atomically (a temporary file renamed over it), so the engine never
reads half of one; the latest request wins. A running engine claims it within 0.2 s (renames it to
``<db>.operator.taken``, so a request written meanwhile is never lost), applies it, and deletes the claim; a
stopped engine does the same at its next start, before it trades. A claim found at start (the engine died
while applying it) is applied again: halting and resuming are idempotent.

A request file that cannot be read is treated as a halt: when in doubt, stop.
"""

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = ["OperatorRequest", "claim_request", "request_file_for", "write_request"]

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
