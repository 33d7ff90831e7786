"""``trading-mcp halt`` and ``trading-mcp resume``: the operator's commands, which need no LLM and outrank it.

With an engine running on the state file, the request goes through the operator's channel
(:mod:`engine.runtime.operator`) and the command waits (a few seconds at most) until that engine has applied it,
then reports the trading state it reads back. With no engine running, the trading state is changed in the state
file at once (under its lock, synced to disk), so ``status`` shows it and no start can miss it; a halt also
stays as a request, so that the next start cancels every open order (and flattens, if asked) before it trades.
"""

import argparse
import time
from pathlib import Path

from engine.persistence import Store
from engine.redaction import Redactor
from engine.runtime.config import load_config
from engine.runtime.operator import OperatorRequest, pending_request, request_file_for, write_request
from engine.runtime.state_lock import Owner, StateInUse, StateLock

__all__ = ["OperatorCommandError", "cmd_halt", "cmd_resume"]

CONFIRM_WITHIN_S = 5.0
DEFAULT_HALT_REASON = "halted by the operator (trading-mcp halt)"


class OperatorCommandError(Exception):
    """The operator's command cannot be carried out (the message says why, in one line)."""


def _state_file(args: argparse.Namespace) -> Path:
    config = load_config(args.config)
    db: Path = args.db if args.db is not None else config.db_path
    if not db.exists():
        raise OperatorCommandError(f"no saved state at {db}: nothing to {args.command}")
    return db


def cmd_halt(args: argparse.Namespace) -> int:
    """Halt the engine using the state file: cancel every open order (optionally flatten) and stop trading until
    ``trading-mcp resume``."""
    db = _state_file(args)
    reason = Redactor().foreign(args.reason.strip())[:500] or DEFAULT_HALT_REASON
    request = OperatorRequest("halt", flatten=args.flatten, reason=reason)
    replaced = write_request(db, request)
    if replaced is not None and replaced.action == "resume":
        print("(this replaces a resume request the engine had not applied yet)")
    then = " and close every position" if args.flatten else ""
    if _latch_if_stopped(db, request):
        print(
            f"halted: no engine is running on {db}; trading stays halted until `trading-mcp resume`, and the next "
            f"start cancels every open order{then} before it trades"
        )
        return 0
    return _await_engine(db, "halt", f"the engine cancels every open order{then} and halts")


def cmd_resume(args: argparse.Namespace) -> int:
    """Lift a pause or a halt, the operator's own included (which the MCP client cannot lift)."""
    db = _state_file(args)
    request = OperatorRequest("resume", reason="resumed by the operator (trading-mcp resume)")
    replaced = write_request(db, request)
    if replaced is not None and replaced.action == "halt":
        print("(this replaces a halt request the engine had not applied yet)")
    if _latch_if_stopped(db, request):
        request_file_for(db).unlink(missing_ok=True)  # applied here: nothing is left for the next start
        print(f"resumed: no engine is running on {db}; trading is active at its next start")
        return 0
    return _await_engine(db, "resume", "the engine resumes trading")


def _latch_if_stopped(db: Path, request: OperatorRequest) -> bool:
    """Apply ``request``'s trading state to the state file when no engine holds it; False when one does."""
    lock = StateLock(db)
    try:
        lock.acquire(Owner.this_process(f"trading-mcp {request.action}"))
    except StateInUse:
        return False
    try:
        store = Store.open(db)
        try:
            halted = request.action == "halt"
            with store.atomic():
                store.set_kv("trading_state", "halted" if halted else "active")
                store.set_kv("halt_reason", request.reason if halted else "")
                store.set_kv("halted_by", "operator")
                kind = "operator_halt" if halted else "resume_trading"
                payload = {"reason": request.reason, "flatten": request.flatten, "engine_running": False}
                store.append_event(0, kind, "operator:cli", payload, time.time_ns())
            store.sync()
        finally:
            store.close()
    finally:
        lock.release()
    return True


def _await_engine(db: Path, action: str, what: str) -> int:
    """Wait until the running engine has applied the request, then report what the state file says."""
    holder = StateLock.holder(db)
    who = holder.describe() if holder is not None else "the engine"
    print(f"{action} requested: {what} within a second ({who})")
    deadline = time.monotonic() + CONFIRM_WITHIN_S
    claim = db.with_name(db.name + ".operator.taken")
    while time.monotonic() < deadline:
        if pending_request(db) is None and not claim.exists():
            break
        time.sleep(0.05)
    else:
        print(f"the engine has not applied it within {CONFIRM_WITHIN_S:g} s; it will at its next check or start")
        return 1
    with Store.open_readonly(db) as store:
        state = store.get_kv("trading_state", "active")
        reason = store.get_kv("halt_reason", "")
    print(f"trading is {state}" + (f": {reason}" if reason else ""))
    return 0
