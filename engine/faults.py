"""Crash points for recovery tests: the process kills itself with SIGKILL the N-th time it passes a named point.

A crash is not a Ctrl-C: to prove that a state file survives anything, the recovery tests stop the engine at
exactly the moments where durability matters, not only at random times. Set in the environment before start::

    TRADING_MCP_CRASH_AT=commit:37     # right after the 37th SQLite transaction the writer commits
    TRADING_MCP_CRASH_AT=venue:5       # right after the 5th call to the venue (an order sent, a cancel)
    TRADING_MCP_CRASH_AT=event:1200    # right after the 1,200th market event is processed
    TRADING_MCP_CRASH_AT=learning:2    # right after the 2nd tick of adaptive weights is saved, before its candle trades

Points are counted from the start of the process. Unset (always, outside tests), :func:`hit` is a global read
and a ``None`` check. Nothing here is imported by anything but the places that name a point.
"""

import os
import signal

__all__ = ["CRASH_ENV", "POINTS", "hit"]

CRASH_ENV = "TRADING_MCP_CRASH_AT"
POINTS = ("commit", "venue", "event", "learning")


def _parse(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    point, _, count = text.partition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{CRASH_ENV}={text!r}: use <point>:<n> with point one of {', '.join(POINTS)} and n >= 1")
    return point, int(count)


_TARGET = _parse(os.environ.get(CRASH_ENV))
_counts = dict.fromkeys(POINTS, 0)


def hit(point: str) -> None:
    """Count a pass through ``point``; SIGKILL this process when it is the one named in ``TRADING_MCP_CRASH_AT``."""
    if _TARGET is None:
        return
    _counts[point] += 1
    if (point, _counts[point]) == _TARGET:
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # pragma: no cover - Windows has no SIGKILL; the nearest is an immediate exit
            os._exit(137)
        os.kill(os.getpid(), kill)
