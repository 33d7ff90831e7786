"""Account-level risk rules that latch: drawdown from the equity peak, daily loss, and exits-only (REDUCING).

Pure and sans-I/O: :class:`AccountGuard` is fed ``(time, equity)`` once per candle and answers with what crossed
a threshold (a :class:`Trip`), or ``None`` when nothing did (the common case: a few comparisons against floors
computed when the peak or the day changes). The engine acts on the trips (halt, flatten, exits only) and saves
:class:`RulesState` in its state file, so a restart keeps the latch.

Definitions (what the tests recompute independently):

- drawdown = (peak - equity) / peak × 100, the peak being the highest equity seen since the rules last started
  afresh; ``max_drawdown_pct`` trips when drawdown >= the threshold (HALTED, the operator's kind of halt);
- daily loss = equity at the start of the UTC day - equity, the start being the first evaluation whose time falls
  in that day (``ts_ns // DAY_NS``, market time in a replay); ``max_daily_loss`` trips when it is >= the threshold
  (HALTED until the next UTC day, or until the operator resumes);
- ``reduce_at_drawdown_pct``: REDUCING (exits only) while drawdown >= the threshold, left when it is below again.

An operator's resume after a rule's halt starts the rules afresh from the equity then (peak and day start).
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import InvalidRequest, LimitExceeded

__all__ = [
    "DAY_NS",
    "MAX_DAILY_LOSS",
    "MAX_DRAWDOWN",
    "REDUCE_AT_DRAWDOWN",
    "RULE_NAMES",
    "AccountGuard",
    "AccountRules",
    "RulesState",
    "Trip",
    "choose_rules",
    "looser_than_cap",
    "propose_rules",
]

DAY_NS = 86_400 * 1_000_000_000
MAX_DRAWDOWN = "max_drawdown_pct"
MAX_DAILY_LOSS = "max_daily_loss"
REDUCE_AT_DRAWDOWN = "reduce_at_drawdown_pct"
RULE_NAMES = (MAX_DRAWDOWN, MAX_DAILY_LOSS, REDUCE_AT_DRAWDOWN)
_HUNDRED = Decimal(100)

Pct = Annotated[Decimal, Field(gt=0, lt=100, allow_inf_nan=False)]
Amount = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class AccountRules(BaseModel):
    """``[risk.rules]`` (and, with the same shape, ``[risk.rule_caps]``: the loosest the MCP client may set).

    A rule left out is off (for a cap: no cap). Smaller thresholds are tighter; flattening is tighter than not.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drawdown_pct: Pct | None = Field(None, description="Halt when equity is this % below its peak.")
    reduce_at_drawdown_pct: Pct | None = Field(None, description="Exits only while equity is this % below its peak.")
    max_daily_loss: Amount | None = Field(
        None, description="Halt until the next UTC day when equity is this much (account currency) below its start."
    )
    flatten_on_drawdown: bool = Field(False, description="Sell every position when max_drawdown_pct halts.")

    def any_enabled(self) -> bool:
        return any(getattr(self, name) is not None for name in RULE_NAMES)


def looser_than_cap(rules: AccountRules, caps: AccountRules) -> list[str]:
    """The settings of ``rules`` looser than ``caps`` allows (off, or a larger threshold, than a cap)."""
    looser = []
    for name in RULE_NAMES:
        value, cap = getattr(rules, name), getattr(caps, name)
        if cap is not None and (value is None or value > cap):
            looser.append(name)
    if caps.flatten_on_drawdown and not rules.flatten_on_drawdown:
        looser.append("flatten_on_drawdown")
    return looser


def _clamped(rules: AccountRules, caps: AccountRules) -> AccountRules:
    update: dict[str, object] = {name: getattr(caps, name) for name in looser_than_cap(rules, caps)}
    return rules.model_copy(update=update) if update else rules


def propose_rules(current: AccountRules, caps: AccountRules, changes: dict[str, object]) -> AccountRules:
    """The rules ``changes`` would give (a number tightens, ``None`` turns a rule off), checked against the caps.

    Raises:
        InvalidRequest: an unknown rule or a bad value.
        LimitExceeded: a value looser than the operator's cap.
    """
    known = [*RULE_NAMES, "flatten_on_drawdown"]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise InvalidRequest(f"unknown risk rule(s) {', '.join(unknown)}; known: {', '.join(known)}")
    cleaned: dict[str, object] = {}
    for name, value in changes.items():
        if name == "flatten_on_drawdown":
            if not isinstance(value, bool):
                raise InvalidRequest(f"{name}: expected true or false, got {value!r}")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int | str | Decimal | float)):
            raise InvalidRequest(f"{name}: expected a number, got {value!r}")
        cleaned[name] = str(value) if isinstance(value, float) else value
    try:
        proposed = AccountRules.model_validate({**current.model_dump(), **cleaned})
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        detail = str(exc).splitlines()[0]
        if callable(errors):
            first = errors()[0]
            detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise InvalidRequest(detail) from None
    for name in looser_than_cap(proposed, caps):
        if name in changes:
            cap = getattr(caps, name)
            raise LimitExceeded(f"{name} {getattr(proposed, name)} is looser than the operator's cap {cap}")
    return proposed


def choose_rules(
    configured: AccountRules,
    caps: AccountRules,
    saved: dict[str, Any] | None,
    saved_configured: dict[str, Any] | None,
) -> tuple[AccountRules, list[str]]:
    """The rules in force after a restart (as :func:`engine.runtime.restart.choose_limits` for the limits): the
    saved ones unless the operator changed ``[risk.rules]`` since, never looser than the caps; and notes."""
    notes: list[str] = []
    rules = configured
    if saved is not None:
        if saved_configured is not None and AccountRules.model_validate(saved_configured) != configured:
            notes.append("the operator changed [risk.rules]; the configuration's rules apply")
        else:
            rules = AccountRules.model_validate(saved)
    looser = looser_than_cap(rules, caps)
    if looser:
        notes.append(f"{', '.join(looser)} looser than the operator's cap: clamped")
        rules = _clamped(rules, caps)
    return rules, notes


@dataclass(slots=True)
class RulesState:
    """What the rules remember (saved in the state file's kv as ``account_rules_state``).

    ``halt_rule``: the rule whose halt is in force ("" when none), set by the engine once it halted.
    """

    peak: Decimal | None = None
    day: int | None = None
    day_start: Decimal | None = None
    drawdown_tripped: bool = False
    daily_tripped: bool = False
    reducing: bool = False
    halt_rule: str = ""
    since_ns: int | None = None  # when the rules last started afresh (an operator's resume); None: from the start

    def to_json(self) -> dict[str, object]:
        return {
            "peak": None if self.peak is None else str(self.peak),
            "day": self.day,
            "day_start": None if self.day_start is None else str(self.day_start),
            "drawdown_tripped": self.drawdown_tripped,
            "daily_tripped": self.daily_tripped,
            "reducing": self.reducing,
            "halt_rule": self.halt_rule,
            "since_ns": self.since_ns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RulesState":
        if not data:
            return cls()
        peak, day_start, day = data.get("peak"), data.get("day_start"), data.get("day")
        return cls(
            peak=None if peak is None else Decimal(str(peak)),
            day=None if day is None else int(day),
            day_start=None if day_start is None else Decimal(str(day_start)),
            drawdown_tripped=bool(data.get("drawdown_tripped")),
            daily_tripped=bool(data.get("daily_tripped")),
            reducing=bool(data.get("reducing")),
            halt_rule=str(data.get("halt_rule", "")),
            since_ns=None if data.get("since_ns") is None else int(data["since_ns"]),
        )


@dataclass(frozen=True, slots=True)
class Trip:
    """Something a rule saw. ``kind``: ``"breach"`` (a halt rule crossed), ``"reduce"`` / ``"recovered"``
    (REDUCING entered / left), or ``"new_day"`` (a UTC day began; ``rule`` is ``max_daily_loss``)."""

    rule: str
    kind: str
    value: Decimal
    threshold: Decimal
    equity: Decimal
    reference: Decimal  # the peak, or the day's start equity

    def figures(self) -> dict[str, str]:
        return {
            "value": f"{self.value:.2f}",
            "threshold": f"{self.threshold:.2f}",
            "equity": f"{self.equity:.2f}",
            "reference": f"{self.reference:.2f}",
        }


@dataclass(slots=True)
class AccountGuard:
    """Evaluates :class:`AccountRules` on the equity, once per candle."""

    rules: AccountRules
    state: RulesState = field(default_factory=RulesState)
    trips: dict[str, int] = field(default_factory=dict)
    _alarm: Decimal = Decimal(0)
    _peak: Decimal = Decimal(0)
    _next_day_ns: int = -1
    _reduce_floor: Decimal | None = None
    _dd_factor: Decimal | None = None
    _reduce_factor: Decimal | None = None

    def __post_init__(self) -> None:
        self.set_rules(self.rules)

    def set_rules(self, rules: AccountRules) -> None:
        self.rules = rules
        dd, reduce_at = rules.max_drawdown_pct, rules.reduce_at_drawdown_pct
        self._dd_factor = None if dd is None else 1 - dd / _HUNDRED
        self._reduce_factor = None if reduce_at is None else 1 - reduce_at / _HUNDRED
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the floors the per-candle comparison uses (after the peak, the day or the rules change)."""
        s, r = self.state, self.rules
        self._peak = s.peak if s.peak is not None else Decimal(0)
        self._next_day_ns = -1 if s.day is None else (s.day + 1) * DAY_NS
        floors: list[Decimal] = []
        self._reduce_floor = None
        if s.peak is not None:
            if self._dd_factor is not None and not s.drawdown_tripped:
                floors.append(s.peak * self._dd_factor)
            if self._reduce_factor is not None:
                self._reduce_floor = s.peak * self._reduce_factor
                floors.append(self._reduce_floor)
        if s.day_start is not None and r.max_daily_loss is not None and not s.daily_tripped:
            floors.append(s.day_start - r.max_daily_loss)
        self._alarm = max(floors) if floors else Decimal("-Infinity")

    def update(self, ts_ns: int, equity: Decimal) -> list[Trip] | None:
        """Feed one equity point; ``None`` when there is nothing to act on, else what crossed (maybe empty while
        REDUCING, so that the engine keeps its state in step)."""
        if ts_ns < self._next_day_ns and equity > self._alarm and not self.state.reducing:
            if equity > self._peak:  # a new peak trips nothing: only the floors move up
                self.state.peak = equity
                self._refresh()
            return None
        return self._evaluate(ts_ns, equity)

    def _evaluate(self, ts_ns: int, equity: Decimal) -> list[Trip] | None:
        s, r = self.state, self.rules
        trips: list[Trip] = []
        day = ts_ns // DAY_NS
        if s.day is None or day > s.day:
            s.day, s.day_start, s.daily_tripped = day, equity, False
            # Only a daily-loss halt needs the engine at a new day (the day's start is rebuilt from the saved
            # equity curve at a restart, so a new day alone is not saved).
            if s.halt_rule == MAX_DAILY_LOSS:
                trips.append(
                    Trip(MAX_DAILY_LOSS, "new_day", Decimal(0), r.max_daily_loss or Decimal(0), equity, equity)
                )
        if s.peak is None or equity > s.peak:
            s.peak = equity
        self._refresh()
        peak = s.peak
        drawdown = (peak - equity) / peak * _HUNDRED if peak > 0 else Decimal(0)
        if r.max_drawdown_pct is not None and not s.drawdown_tripped and drawdown >= r.max_drawdown_pct:
            s.drawdown_tripped = True
            trips.append(self._count(Trip(MAX_DRAWDOWN, "breach", drawdown, r.max_drawdown_pct, equity, peak)))
        loss = (s.day_start - equity) if s.day_start is not None else Decimal(0)
        if r.max_daily_loss is not None and not s.daily_tripped and loss >= r.max_daily_loss:
            s.daily_tripped = True
            ref = s.day_start if s.day_start is not None else equity
            trips.append(self._count(Trip(MAX_DAILY_LOSS, "breach", loss, r.max_daily_loss, equity, ref)))
        reduce_at = r.reduce_at_drawdown_pct
        if reduce_at is not None and not s.reducing and drawdown >= reduce_at:
            s.reducing = True
            trips.append(self._count(Trip(REDUCE_AT_DRAWDOWN, "reduce", drawdown, reduce_at, equity, peak)))
        elif s.reducing and (reduce_at is None or drawdown < reduce_at):
            s.reducing = False
            trips.append(Trip(REDUCE_AT_DRAWDOWN, "recovered", drawdown, reduce_at or Decimal(0), equity, peak))
        self._refresh()
        if trips or s.reducing:
            return trips
        return None

    def _count(self, trip: Trip) -> Trip:
        self.trips[trip.rule] = self.trips.get(trip.rule, 0) + 1
        return trip

    def start_afresh(self, equity: Decimal | None, ts_ns: int) -> None:
        """The operator lifted a rule's halt: the peak and the day's start become the equity now."""
        s = self.state
        s.peak = equity
        s.day_start = equity
        s.drawdown_tripped = s.daily_tripped = s.reducing = False
        s.halt_rule = ""
        s.since_ns = ts_ns
        self._refresh()

    def restore_from_curve(self, points: list[tuple[int, Decimal]]) -> None:
        """Bring the saved state up to the equity curve (saved every candle; the state only when a rule acts):
        the peak is the curve's highest since the rules last started afresh, and a day the curve entered after
        the state was saved starts at its first point."""
        s = self.state
        since = s.since_ns if s.since_ns is not None else -(2**63)
        highest = max((eq for ts, eq in points if ts >= since), default=None)
        if highest is not None and (s.peak is None or highest > s.peak):
            s.peak = highest
        if points:
            last_day = points[-1][0] // DAY_NS
            # (A daily-loss halt is left for the next update to lift, as a new day: it says so in an event.)
            if s.day is None or (last_day > s.day and s.halt_rule != MAX_DAILY_LOSS):
                first = next(eq for ts, eq in points if ts // DAY_NS == last_day)
                s.day, s.day_start, s.daily_tripped = last_day, first, False
        self._refresh()

    def rows(self, equity: Decimal) -> list[tuple[str, Decimal, Decimal | None, Decimal | None, str]]:
        """Each enabled rule: ``(name, threshold, current value, headroom, unit)`` at ``equity``."""
        s, r = self.state, self.rules
        out: list[tuple[str, Decimal, Decimal | None, Decimal | None, str]] = []
        peak = s.peak if s.peak is None or equity <= s.peak else equity
        drawdown = (peak - equity) / peak * _HUNDRED if peak is not None and peak > 0 else None
        for name in (MAX_DRAWDOWN, REDUCE_AT_DRAWDOWN):
            threshold = getattr(r, name)
            if threshold is not None:
                head = None if drawdown is None else threshold - drawdown
                out.append((name, threshold, drawdown, head, "%"))
        if r.max_daily_loss is not None:
            loss = None if s.day_start is None else max(Decimal(0), s.day_start - equity)
            head = None if loss is None else r.max_daily_loss - loss
            out.append((MAX_DAILY_LOSS, r.max_daily_loss, loss, head, ""))
        return out
