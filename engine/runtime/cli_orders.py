"""``trading-mcp cancel ORDER_ID`` and ``trading-mcp close PAIR [--strategy S]``: one order, one position, from the
operator's shell, with the operator's authority (a close goes through even under a halt).

With an engine running on the state file, the request goes through the operator's channel
(:mod:`engine.runtime.operator`, a file of its own per request) and the command waits (a few seconds at most) for
the engine's answer: what it sent or cancelled, or its refusal in one sentence. If the engine does not take it in
time, the request is withdrawn and nothing changes.

With no engine running:

* ``cancel`` of an open order is kept for the next start, which cancels it before trading (its open orders go
  back to the venue at start, this one does not stay); an unknown or closed order is refused at once;
* ``close`` is refused: a market sell at whatever moment and price the engine next starts is not "close now".
"""

import argparse
import time
from pathlib import Path
from typing import Any

from engine.market.catalog_files import canonical_pair_name
from engine.persistence import Store
from engine.runtime.config import load_config
from engine.runtime.operator import (
    OperatorOrderRequest,
    read_order_answer,
    withdraw_order_request,
    write_order_request,
)
from engine.runtime.state_lock import Owner, StateInUse, StateLock

__all__ = ["ANSWER_WITHIN_S", "OrderCommandError", "add_orders_parsers", "cmd_cancel", "cmd_close"]

ANSWER_WITHIN_S = 5.0


class OrderCommandError(Exception):
    """The command cannot be carried out (the message says why, in one line); nothing changed."""


def add_orders_parsers(sub: Any) -> None:
    """Add ``cancel`` and ``close`` to the command line's sub-commands."""
    cancel = sub.add_parser("cancel", help="cancel one open order of the engine using this state (its client id)")
    cancel.add_argument("order_id", help="the order's client id, as `trading-mcp status` lists it")
    close = sub.add_parser("close", help="close a position at market (every strategy's in the pair, or --strategy's)")
    close.add_argument("pair", help="the pair, any spelling: BTC/USD, XBTUSD, btc-usd")
    close.add_argument("--strategy", help="only this strategy's position")
    for parser in (cancel, close):
        parser.add_argument("--config", type=Path, help="TOML configuration file (default: built-in defaults)")
        parser.add_argument("--db", type=Path, help="SQLite state file (default: <data_dir>/engine.db)")


def _state_file(args: argparse.Namespace) -> Path:
    config = load_config(args.config)
    db: Path = args.db if args.db is not None else config.db_path
    if not db.exists():
        raise OrderCommandError(f"no saved state at {db}: nothing to {args.command}")
    return db


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel one open order of the engine using the state file (or at its next start, when it is stopped)."""
    db = _state_file(args)
    order_id = args.order_id.strip()
    request = OperatorOrderRequest("cancel", order_id)
    lock = StateLock(db)
    try:
        lock.acquire(Owner.this_process("trading-mcp cancel"))
    except StateInUse:
        return _ask_engine(db, request)
    try:
        with Store.open_readonly(db) as store:
            order = store.get_order(order_id)
        if order is None:
            raise OrderCommandError(f"no order {order_id!r} is known in {db}; nothing was changed")
        if not order.is_open:
            raise OrderCommandError(f"order {order_id} is {order.status.value}, not open: there is nothing to cancel")
        write_order_request(db, OperatorOrderRequest("cancel", order_id, wants_answer=False))
    finally:
        lock.release()
    print(
        f"cancel kept: no engine is running on {db}; its next start cancels order {order_id} "
        "(on the venue too) before it trades"
    )
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    """Close a position at market through the engine using the state file (refused when none runs)."""
    db = _state_file(args)
    pair = args.pair.strip()
    if not pair:
        raise OrderCommandError("give a pair, e.g. BTC/USD")
    if StateLock.holder(db) is None:
        raise OrderCommandError(
            f"no engine is running on {db}: nothing was sold (a position is closed at market by a running engine "
            f"only; start it, then `trading-mcp close {canonical_pair_name(pair)}`)"
        )
    return _ask_engine(db, OperatorOrderRequest("close", pair, args.strategy))


def _ask_engine(db: Path, request: OperatorOrderRequest) -> int:
    """Leave ``request`` for the running engine and report its answer; withdraw it if none comes in time."""
    written = write_order_request(db, request)
    deadline = time.monotonic() + ANSWER_WITHIN_S
    while time.monotonic() < deadline:
        answer = read_order_answer(db, written.request_id)
        if answer is not None:
            ok, message = answer
            if not ok:
                raise OrderCommandError(f"refused by the engine: {message}; nothing was changed")
            print(f"{request.action}: {message}")
            return 0
        time.sleep(0.05)
    if withdraw_order_request(db, written.request_id):
        raise OrderCommandError(
            f"the engine on {db} did not take the request within {ANSWER_WITHIN_S:g} s; withdrawn, nothing changed"
        )
    raise OrderCommandError(
        f"the engine took the request but has not answered within {ANSWER_WITHIN_S:g} s; see `trading-mcp status`"
    )
