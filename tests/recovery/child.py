"""The engine as a child process: ``python -m trading_mcp run --speed max --quiet --db FILE``, killed on purpose.

A SIGKILL is the harshest stop a process can get (no handler, no ``finally``, no flush), so the child is killed
either by itself at a named durable boundary (``TRADING_MCP_CRASH_AT``, see :mod:`engine.faults`) or by this
process after a delay. Every wait is bounded: a child that outlives ``timeout_s`` is killed and reported as hung.
"""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CRASH_ENV", "KILL_CODES", "ChildRun", "Kill", "run_child"]

CRASH_ENV = "TRADING_MCP_CRASH_AT"
KILL_CODES = frozenset({-signal.SIGKILL, 128 + signal.SIGKILL})  # -9 from Popen, 137 through a shell


@dataclass(frozen=True)
class Kill:
    """Where a run is killed: ``commit``/``venue``/``event`` at the n-th pass of that crash point, or ``timer``
    after ``fraction`` of a whole run's wall time (a fraction, so that a slower machine still kills mid-run)."""

    point: str
    n: int = 0
    fraction: float = 0.0

    def __str__(self) -> str:
        return f"timer@{self.fraction:.2f}" if self.point == "timer" else f"{self.point}:{self.n}"


@dataclass(frozen=True)
class ChildRun:
    """How one child ended. ``returncode`` is None when it hung and had to be killed at the timeout."""

    returncode: int | None
    stderr: str
    duration_s: float

    @property
    def killed(self) -> bool:
        return self.returncode in KILL_CODES

    @property
    def finished(self) -> bool:
        """It ran to the end by itself, without a traceback."""
        return self.returncode == 0 and "Traceback" not in self.stderr

    @property
    def last_line(self) -> str:
        """The last non-empty stderr line (where an engine error says why), or the exit status."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        if lines:
            return lines[-1][:300]
        return "hung: killed at the timeout" if self.returncode is None else f"exit status {self.returncode}"


def _command(db: Path, data: Path | None, config: Path | None) -> list[str]:
    # Absolute paths: the child runs in the state file's folder.
    command = [sys.executable, "-m", "trading_mcp", "run", "--speed", "max", "--quiet", "--db", str(db.resolve())]
    if data is not None:
        command += ["--data", str(data.resolve())]
    if config is not None:
        command += ["--config", str(config.resolve())]
    return command


def run_child(
    db: Path,
    *,
    data: Path | None = None,
    config: Path | None = None,
    kill: Kill | None = None,
    run_s: float = 1.0,
    timeout_s: float = 120.0,
) -> ChildRun:
    """Run the engine on ``db`` until it ends, its crash point kills it, or ``kill.fraction`` × ``run_s`` passes.

    The working directory is ``db``'s folder, so that nothing the engine writes by default lands elsewhere.
    """
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if kill is not None and kill.point != "timer":
        env[CRASH_ENV] = f"{kill.point}:{kill.n}"
    stderr_path = db.with_name(f"{db.name}.stderr-{time.monotonic_ns()}")
    started = time.monotonic()
    with stderr_path.open("w+", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            _command(db, data, config),
            cwd=db.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        hung = False
        try:
            if kill is not None and kill.point == "timer":
                try:
                    proc.wait(timeout=kill.fraction * run_s)
                except subprocess.TimeoutExpired:
                    proc.kill()  # SIGKILL on POSIX
            proc.wait(timeout=max(timeout_s - (time.monotonic() - started), 0.1))
        except subprocess.TimeoutExpired:
            hung = True
            proc.kill()
            proc.wait(timeout=30)
        finally:
            if proc.returncode is None:  # pragma: no cover - only when the wait above itself was interrupted
                proc.kill()
                proc.wait(timeout=30)
        stderr.seek(0)
        text = stderr.read()
    return ChildRun(returncode=None if hung else proc.returncode, stderr=text, duration_s=time.monotonic() - started)
