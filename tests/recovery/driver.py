"""One kill point from start to finish: kill, check, restart (maybe killed again), finish, compare.

What a point reports (``Finding.kind``):

* ``first_run_failed`` / ``hung``: the first run ended otherwise than by the kill or by finishing.
* ``restart_failed``: a restart exited non-zero or printed a traceback; the reason is its last stderr line.
* ``invariant:<kind>``: the independent ledger (:mod:`recovery.ledger`) on the killed or the final state.
* ``divergence:<kind>``: the final state differs from the uninterrupted run's (:mod:`recovery.compare`).
* ``events_once``: the final cursor is not the data's length (an event skipped, or the run did not end).
* ``cap`` / ``cap_unchecked``: after a restart under lowered caps, a buy above the new cap, or no buy to check.

Whether the first kill landed is reported apart (``landed``): a kill point past the end of the run is no kill,
and a campaign must not count it as a pass.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

from recovery.caps import buys_above_cap, prepare_restart
from recovery.child import ChildRun, Kill, run_child
from recovery.compare import Outcome, diff_outcomes, outcome_of
from recovery.data import count_events
from recovery.ledger import Violation, check_state
from recovery.points import KillPoint
from recovery.state import StateFile, StateReadError, order_number, read_state

__all__ = ["Finding", "PointResult", "Reference", "ReferenceRunError", "run_point", "run_reference"]


class ReferenceRunError(Exception):
    """The uninterrupted run itself failed: nothing can be compared with it."""


@dataclass(frozen=True)
class Finding:
    """One problem a point found: its kind (see the module docstring), the phase it was seen in, one line why."""

    kind: str
    phase: str
    reason: str

    def __str__(self) -> str:
        return f"[{self.phase}] {self.kind}: {self.reason}"


@dataclass
class PointResult:
    """What one point did: whether its kills landed (``recovery_landed`` is None without a recovery kill) and
    what it found; a point passes only with its kills landed and no finding."""

    point: KillPoint
    landed: bool = False
    recovery_landed: bool | None = None
    findings: list[Finding] = field(default_factory=list)
    duration_s: float = 0.0

    def summary(self) -> str:
        """The point, what was killed, and every finding on its own line."""
        if self.landed:
            first = "killed"
        elif any(f.phase == "first run" for f in self.findings):
            first = "the first run failed"
        else:
            first = "NO KILL (the run ended first)"
        head = f"{self.point.label}: {first}"
        if self.recovery_landed is not None:
            head += f", recovery {'killed' if self.recovery_landed else 'not killed (it ended first)'}"
        return "\n".join([head, *(f"  {finding}" for finding in self.findings)])


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run: what every resumed run must end as."""

    data: Path | None
    events: int
    outcome: Outcome
    cursor: object
    run_s: float
    orders: int
    violations: tuple[Violation, ...]
    config: Path | None = None
    """The configuration every run uses (a point that restarts under a changed one uses that instead)."""

    @property
    def timeout_s(self) -> float:
        """A bound for any one child: far above a whole run, so only a hang reaches it."""
        return max(60.0, 20 * self.run_s)


def run_reference(
    workdir: Path, data: Path | None = None, timeout_s: float = 600.0, repeats: int = 1, config: Path | None = None
) -> Reference:
    """Run the same command as the points, on a fresh file, to the end; then ``repeats`` more times on fresh files.

    The repeats serve twice: they must end in the same state (else replays are not deterministic and no
    divergence would mean anything), and the fastest run times the timer kills (a run slowed by a busy machine
    would put late timer kills past the end of a normal run).

    Raises:
        ReferenceRunError: a run did not finish, its state cannot be read, or two runs ended differently.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    states, durations = [], []
    for attempt in range(1 + repeats):
        db = workdir / f"reference-{attempt}.db"
        run = run_child(db, data=data, config=config, timeout_s=timeout_s)
        if not run.finished:
            raise ReferenceRunError(f"the uninterrupted run failed: {run.last_line}")
        try:
            states.append(read_state(db))
        except StateReadError as exc:
            raise ReferenceRunError(f"the uninterrupted run's state: {exc}") from None
        durations.append(run.duration_s)
    state = states[0]
    outcome = outcome_of(state)
    for other in states[1:]:
        differences = diff_outcomes(outcome_of(other), outcome)
        if differences:
            raise ReferenceRunError(f"two uninterrupted runs ended differently: {differences[0]}")
    events = count_events(data)
    return Reference(
        data=data,
        events=events,
        outcome=outcome,
        cursor=state.kv.get("cursor"),
        run_s=min(durations),
        orders=len(state.orders),
        violations=tuple(check_state(state, events)),
        config=config,
    )


class _Point:
    """The state of one point while it runs (a class only to keep the steps short)."""

    def __init__(self, point: KillPoint, reference: Reference, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.point, self.reference = point, reference
        self.db = workdir / "state.db"
        self.result = PointResult(point)

    def find(self, kind: str, phase: str, reason: str) -> None:
        self.result.findings.append(Finding(kind, phase, reason))

    def run(self, kill: Kill | None, config: Path | None) -> ChildRun:
        ref = self.reference
        chosen = config if config is not None else ref.config
        return run_child(self.db, data=ref.data, config=chosen, kill=kill, run_s=ref.run_s, timeout_s=ref.timeout_s)

    def read(self, phase: str) -> StateFile | None:
        try:
            return read_state(self.db)
        except StateReadError as exc:
            self.find("invariant:unreadable", phase, str(exc))
            return None

    def check(self, phase: str) -> StateFile | None:
        state = self.read(phase)
        if state is not None:
            for violation in check_state(state, self.reference.events):
                self.find(f"invariant:{violation.kind}", phase, violation.reason)
        return state

    def ended(self, run: ChildRun, phase: str, failure: str) -> bool:
        """Whether the run ended by a kill or by finishing; otherwise record why and say no."""
        if run.returncode is None:
            self.find("hung", phase, f"still running after {self.reference.timeout_s:.0f} s")
            return False
        if run.killed or run.finished:
            return True
        self.find(failure, phase, run.last_line)
        return False

    def execute(self) -> PointResult:
        point, result = self.point, self.result
        first = self.run(point.first, None)
        if not self.ended(first, "first run", "first_run_failed"):
            return result
        result.landed = first.killed
        killed = self.check("after kill") if first.killed else self.read("after kill")
        config = prepare_restart(self.db, point.config) if point.config is not None else None
        if point.recovery is not None:
            restart = self.run(point.recovery, config)
            if not self.ended(restart, "restart killed in recovery", "restart_failed"):
                return result
            result.recovery_landed = restart.killed
            if restart.killed:
                self.check("after recovery kill")
        final = self.run(None, config)
        if final.returncode is None:
            self.find("hung", "final restart", f"still running after {self.reference.timeout_s:.0f} s")
            return result
        if not final.finished:
            self.find("restart_failed", "final restart", final.last_line)
            return result
        state = self.check("final")
        if state is None:
            return result
        self.events_once(state)
        if config is None:
            for divergence in diff_outcomes(outcome_of(state), self.reference.outcome):
                self.find(f"divergence:{divergence.kind}", "final", divergence.reason)
        else:
            self.caps(state, killed)
        return result

    def events_once(self, state: StateFile) -> None:
        cursor, events = state.kv.get("cursor"), self.reference.events
        if cursor != events:
            self.find("events_once", "final", f"final cursor {cursor}, the data has {events} events")

    def caps(self, state: StateFile, killed: StateFile | None) -> None:
        numbers = [order_number(o.client_id) for o in killed.orders] if killed is not None else []
        after = max((n for n in numbers if n is not None), default=0)
        checked, above = buys_above_cap(state, after)
        if above:
            self.find("cap", "final", f"{len(above)} of {checked} buys after the restart: first {above[0]}")
        if checked == 0:
            self.find("cap_unchecked", "final", f"no buy was placed after the restart (orders up to #{after} before)")


def run_point(point: KillPoint, reference: Reference, workdir: Path) -> PointResult:
    """Run ``point`` in ``workdir`` (a fresh folder) against ``reference``; never raises for the engine's faults."""
    started = time.monotonic()
    result = _Point(point, reference, workdir).execute()
    result.duration_s = time.monotonic() - started
    return result
