"""Adaptive strategy weights: each strategy's capital share follows its recent risk-adjusted performance.

A strategy's ``weight`` scales every entry it makes (``order_quote_amount × weight``, or its equity-fraction
budget × weight: :mod:`engine.risk.sizing`). With ``[learning] enabled = true`` the engine moves the weights by the
multiplicative weights rule (the exponential, "Hedge" form: Arora, Hazan & Kale 2012, "The Multiplicative Weights
Update Method: a Meta-Algorithm and Applications", Theory of Computing 8(6), section 2.1 and Theorem 2.3; Freund &
Schapire 1997), on a schedule of engine time, within bounds only the operator's config sets.

The rule, at each tick (the first candle that closes at or after a multiple of ``every`` since 1970-01-01 UTC:
with ``every = "1d"`` each midnight UTC, in engine time, so a backtest and a live run tick alike):

1. The round trips of strategy *i* in the lookback: those closed at or before the tick and within the last
   ``lookback`` of engine time (``"30d"``), or its last N (``lookback = 50``). Each gives a return
   ``r = net PnL / (entry price × quantity)``: the net result, after fees, per unit of capital the trip risked,
   in the pair's own quote asset (so pairs and accounts of any currency compare).
2. Its score ``s_i``: ``mean(r)`` (``score = "mean_return"``) or ``mean(r) / stdev(r)`` (``"sharpe"``, the sample
   standard deviation; undefined, so no update, when every return is the same).
3. Its gain ``m_i = clamp(s_i / score_scale, -1, 1)``: the multiplicative weights method needs gains in [-1, 1];
   ``score_scale`` is the score that counts as a full gain (default 1 for sharpe, 0.01 for mean_return).
4. ``w_i' = w_i × exp(eta × m_i)``.
5. Bounds: each ``w_i'`` is held within ``[min_weight, max_weight]`` (the strategy's own bounds where
   ``[learning.strategies.NAME]`` sets them). With ``keep_total = true`` (the default) the updated weights are
   ``clamp(λ × w_i', min_i, max_i)`` with the one factor λ that keeps their sum what it was before the tick:
   capital moves from the losers to the winners, the total deployed stays what the operator configured (so a lone
   scored strategy's weight never moves; ``keep_total = false`` lets each weight move on its own).
6. Each weight is quantised to 4 decimals (half-even; the kept sum holds to that rounding).

A strategy with fewer than ``min_trades`` round trips in the lookback, or an undefined score, keeps its weight and
takes no part in the tick (nor in the kept total). Missed ticks (a gap in the data, an engine stopped for days)
are not made up: the first candle after them makes one update, and the schedule goes on from there.

Every tick writes a ``learning_tick`` event (each strategy's trades, score, gain, weight before and after, and why),
and every change of a weight a ``weight_changed`` event with its reason; ``bot://strategies`` shows each weight,
its bounds and its last change. The weights, the configured weights they grew from and the next tick's time are
saved in one kv entry (``learning``) when they change, before the market loop goes on (committed to disk first in
a live or resumable run), so a restart, even after SIGKILL, trades with the weights in force and never applies a
tick twice: the saved next tick lies after the candle that made it, which a resumed replay does not process again.

The operator outranks everything: a configured weight that differs from the one the saved weights grew from is
the operator's new choice and replaces the learned weight; bounds narrowed in the config clamp the saved weights at
start; ``enabled = false`` puts the configured weights back (both with a ``weight_changed`` event). The MCP client
can read all of it and change none of it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from engine import faults
from engine.portfolio.performance import ClosedTrade
from engine.runtime.config import LearningConfig

if TYPE_CHECKING:
    from engine.runtime.app import Engine
    from engine.runtime.trader import StrategySlot

__all__ = [
    "LEARNING_KV",
    "LEARNING_TICK",
    "WEIGHT_CHANGED",
    "Learning",
    "Score",
    "Update",
    "adapt_weights",
    "multiplicative_update",
    "next_boundary",
    "score_trips",
    "trip_return",
]

LEARNING_KV = "learning"
WEIGHT_CHANGED = "weight_changed"
LEARNING_TICK = "learning_tick"
QUANTUM = Decimal("0.0001")
RULE = "multiplicative weights, w × exp(eta × clamp(score / score_scale, -1, 1)) (Arora, Hazan & Kale 2012)"
_NS = 10**9
_CTX = Context(prec=28)
_ONE = Decimal(1)


def next_boundary(now_ns: int, every_ns: int) -> int:
    """The first multiple of ``every_ns`` (since 1970-01-01 UTC) strictly after ``now_ns``."""
    return (now_ns // every_ns + 1) * every_ns


def trip_return(trip: ClosedTrade) -> Decimal | None:
    """Net PnL per unit risked: ``pnl / (entry_price × qty)``, in the pair's own quote asset (None: no notional)."""
    notional = trip.entry_price * trip.qty
    if notional <= 0:
        return None
    with localcontext(_CTX):
        return trip.pnl / notional


@dataclass(frozen=True, slots=True)
class Score:
    """A strategy's score over its lookback: ``value`` None when it cannot be scored (``why`` says why)."""

    trades: int
    value: Decimal | None
    why: str = ""


def score_trips(trips: Sequence[ClosedTrade], kind: str, min_trades: int) -> Score:
    """Score one strategy's round trips (see the module: ``mean_return`` or ``sharpe``)."""
    returns = [r for r in (trip_return(t) for t in trips) if r is not None]
    n = len(returns)
    if n < min_trades:
        return Score(
            n,
            None,
            f"{n} round trip{'' if n == 1 else 's'} in the lookback, fewer than min_trades {min_trades}: weight kept",
        )
    with localcontext(_CTX):
        mean = sum(returns, Decimal(0)) / n
        if kind == "mean_return":
            return Score(n, mean)
        if n < 2:
            return Score(n, None, "one round trip has no standard deviation: sharpe undefined, weight kept")
        variance = sum(((r - mean) ** 2 for r in returns), Decimal(0)) / (n - 1)
        if variance == 0:
            return Score(n, None, "every return in the lookback is the same: sharpe undefined, weight kept")
        return Score(n, mean / variance.sqrt())


def gain(score: Decimal, scale: Decimal) -> Decimal:
    """The score as a gain in [-1, 1] (``score / scale``, capped)."""
    with localcontext(_CTX):
        return max(-_ONE, min(_ONE, score / scale))


def _clamp(value: Decimal, lo: Decimal, hi: Decimal) -> Decimal:
    return lo if value < lo else hi if value > hi else value


def _keep_total(
    raw: Mapping[str, Decimal], bounds: Mapping[str, tuple[Decimal, Decimal]], total: Decimal
) -> dict[str, Decimal]:
    """``clamp(λ × raw_i, lo_i, hi_i)`` with the λ > 0 that makes their sum ``total`` (all at a bound when none
    can). The sum is piecewise linear and non-decreasing in λ: λ is found exactly on the segment between the two
    breakpoints (λ = lo_i / raw_i or hi_i / raw_i) that bracket ``total``."""
    with localcontext(_CTX):

        def at(lam: Decimal) -> dict[str, Decimal]:
            return {n: _clamp(lam * w, *bounds[n]) for n, w in raw.items()}

        points = sorted({b / w for n, w in raw.items() for b in bounds[n]})
        if total <= sum(at(points[0]).values()):
            return at(points[0])
        if total >= sum(at(points[-1]).values()):
            return at(points[-1])
        for a, b in pairwise(points):
            if sum(at(b).values()) < total:
                continue
            mid = (a + b) / 2  # inside (a, b) each weight is either held at a bound or free (λ × raw_i)
            held = Decimal(0)
            free = Decimal(0)
            for n, w in raw.items():
                lo, hi = bounds[n]
                if mid * w <= lo:
                    held += lo
                elif mid * w >= hi:
                    held += hi
                else:
                    free += w
            if free == 0:
                return at(a)
            return at((total - held) / free)
        return at(points[-1])


@dataclass(frozen=True, slots=True)
class Update:
    """What one tick did to one strategy's weight."""

    strategy: str
    before: Decimal
    after: Decimal
    trades: int
    score: Decimal | None
    gain: Decimal | None
    multiplier: Decimal | None
    reason: str

    @property
    def changed(self) -> bool:
        return self.after != self.before


def multiplicative_update(
    weights: Mapping[str, Decimal],
    scores: Mapping[str, Score],
    settings: LearningConfig,
) -> list[Update]:
    """One tick of the rule (see the module) over ``weights`` (strategy -> weight in force), given each one's
    score; pure: the caller applies the result."""
    eta, scale = settings.eta, settings.scale
    bounds = {name: settings.bounds(name) for name in weights}
    raw: dict[str, Decimal] = {}
    gains: dict[str, Decimal] = {}
    multipliers: dict[str, Decimal] = {}
    with localcontext(_CTX):
        for name, weight in weights.items():
            score = scores[name]
            if score.value is None:
                continue
            g = gain(score.value, scale)
            m = (eta * g).exp()
            gains[name], multipliers[name] = g, m
            raw[name] = weight * m
        if raw and settings.keep_total:
            total = sum((weights[n] for n in raw), Decimal(0))
            moved = _keep_total(raw, bounds, total)
        else:
            moved = {n: _clamp(w, *bounds[n]) for n, w in raw.items()}
    updates = []
    for name, before in weights.items():
        score = scores[name]
        if name not in raw:
            updates.append(Update(name, before, before, score.trades, score.value, None, None, score.why))
            continue
        after = moved[name].quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
        lo, hi = bounds[name]
        after = _clamp(after, lo, hi)
        g, m = gains[name], multipliers[name]
        assert score.value is not None
        why = (
            f"{settings.score} {_show(score.value)} over {score.trades} round trips, gain {_show(g)}: "
            f"x exp({settings.eta} x {_show(g)}) = {_show(m)}"
        )
        if settings.keep_total and len(raw) > 1:
            why += ", rescaled so the scored weights keep their sum"
        elif settings.keep_total:
            why += "; the only strategy scored keeps its share (keep_total)"
        if after in (lo, hi) and raw[name] != after:
            why += f", held at its {'lower' if after == lo else 'upper'} bound {after}"
        if after == before and lo < after < hi and len(raw) > 1:
            why += ": no change at 4 decimals"
        updates.append(Update(name, before, after, score.trades, score.value, g, m, why))
    return updates


def _show(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN).normalize(), "f")


def lookback_trips(
    trips: Iterable[ClosedTrade], strategy: str, now_ns: int, settings: LearningConfig
) -> list[ClosedTrade]:
    """``strategy``'s round trips in the lookback at ``now_ns`` (closed at or before it)."""
    window = settings.lookback_s
    mine = [t for t in trips if t.strategy == strategy and t.exit_ts_ns <= now_ns]
    if window is None:
        assert isinstance(settings.lookback, int)
        return mine[-settings.lookback :]
    since = now_ns - window * _NS
    return [t for t in mine if t.exit_ts_ns > since]


@dataclass(slots=True)
class Learning:
    """The schedule and the saved state of adaptive weights over the engine's slots (see the module)."""

    settings: LearningConfig
    slots: "list[StrategySlot]"
    configured: dict[str, Decimal]
    """The configured weight of each strategy the learned ones grew from (the operator's, at the last start)."""
    next_ns: int = 0
    """When the next tick is due (engine time); 0: at the first candle, which only schedules it."""
    ticks: int = 0
    last_change: dict[str, tuple[int, str]] = field(default_factory=dict)
    """strategy -> (engine time, reason) of its weight's last change."""

    @property
    def every_ns(self) -> int:
        return self.settings.every_s * _NS

    def saved(self) -> dict[str, Any]:
        """The kv entry (see :meth:`restore`)."""
        return {
            "weights": {s.name: s.weight for s in self.slots},
            "configured": dict(self.configured),
            "next_ns": self.next_ns,
            "every_s": self.settings.every_s,
            "ticks": self.ticks,
            "last_change": {n: {"ts_ns": ts, "reason": why} for n, (ts, why) in self.last_change.items()},
        }

    @classmethod
    def restore(
        cls, settings: LearningConfig, slots: "list[StrategySlot]", saved: object, now_ns: int
    ) -> tuple["Learning", list[dict[str, Any]]]:
        """Adaptive weights over ``slots`` (whose weights are the configured ones), with what a previous run saved
        applied: the learned weights, unless the operator's config changed that strategy's weight since (its
        configured weight wins) or its bounds now exclude it (clamped). Returns the ``weight_changed`` payloads of
        the weights the operator's config moved."""
        state = saved if isinstance(saved, dict) else {}
        weights = _decimals(state.get("weights"))
        configured_then = _decimals(state.get("configured"))
        learning = cls(settings, slots, {s.name: s.weight for s in slots})
        changes: list[dict[str, Any]] = []
        for slot in slots:
            learned = weights.get(slot.name)
            if learned is None:
                continue
            lo, hi = settings.bounds(slot.name)
            then = configured_then.get(slot.name)
            if then is not None and then != slot.weight:
                why = (
                    f"the operator's config changed this strategy's weight from {then} to {slot.weight}: it replaces "
                    f"the learned weight"
                )
                if learned != slot.weight:
                    changes.append(_payload(slot.name, learned, slot.weight, why, (lo, hi), now_ns))
                continue
            weight = _clamp(learned, lo, hi)
            if weight != learned:
                why = f"the operator's bounds are now [{lo}, {hi}]: the learned weight {learned} is held at {weight}"
                changes.append(_payload(slot.name, learned, weight, why, (lo, hi), now_ns))
            slot.weight = weight
        for name, entry in (state.get("last_change") or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("ts_ns"), int):
                learning.last_change[name] = (entry["ts_ns"], str(entry.get("reason", "")))
        for change in changes:
            learning.last_change[change["strategy"]] = (now_ns, change["reason"])
        if state.get("every_s") == settings.every_s and isinstance(state.get("next_ns"), int):
            learning.next_ns = state["next_ns"]  # else rescheduled at the first candle
        learning.ticks = int(state.get("ticks", 0) or 0)
        return learning, changes

    def tick(self, now_ns: int, trips: Sequence[ClosedTrade]) -> list[Update] | None:
        """At the first candle closing at or after :attr:`next_ns`: update the weights (None when this candle only
        schedules the first tick) and schedule the next one."""
        due = self.next_ns
        self.next_ns = next_boundary(now_ns, self.every_ns)
        if due == 0:
            return None
        self.ticks += 1
        settings = self.settings
        weights = {s.name: s.weight for s in self.slots}
        scores = {
            s.name: score_trips(lookback_trips(trips, s.name, now_ns, settings), settings.score, settings.min_trades)
            for s in self.slots
        }
        updates = multiplicative_update(weights, scores, settings)
        by_name = {s.name: s for s in self.slots}
        for update in updates:
            if update.changed:
                by_name[update.strategy].weight = update.after
                self.last_change[update.strategy] = (now_ns, update.reason)
        return updates


def _decimals(value: object) -> dict[str, Decimal]:
    if not isinstance(value, dict):
        return {}
    out = {}
    for name, text in value.items():
        try:
            out[str(name)] = Decimal(str(text))
        except ArithmeticError:
            continue
    return out


def _payload(
    strategy: str, before: Decimal, after: Decimal, reason: str, bounds: tuple[Decimal, Decimal], now_ns: int
) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "before": before,
        "after": after,
        "bounds": list(bounds),
        "reason": reason,
        "market_time_ns": now_ns,
    }


def restore_learning(engine: "Engine", saved: object) -> "Learning | None":
    """At start, after the slots are built with their configured weights: the learned weights back in force (see
    :meth:`Learning.restore`), or, with learning off, the configured ones (a saved state is then dropped, with an
    event for each weight it had moved)."""
    settings = engine.config.learning
    journal = engine.journal
    now = engine.clock.now_ns()
    if not settings.enabled:
        if isinstance(saved, dict):
            for slot in engine.slots:
                learned = _decimals(saved.get("weights")).get(slot.name)
                if learned is not None and learned != slot.weight:
                    why = "learning is off in the operator's config: the configured weight applies again"
                    journal.event(
                        WEIGHT_CHANGED,
                        "operator:config",
                        _payload(slot.name, learned, slot.weight, why, (slot.weight, slot.weight), now),
                    )
            engine.writer.submit(lambda store: store.delete_kv(LEARNING_KV))
        return None
    learning, changes = Learning.restore(settings, engine.slots, saved, now)
    for change in changes:
        journal.event(WEIGHT_CHANGED, "operator:config", change)
    journal.set_kv(LEARNING_KV, learning.saved())
    return learning


async def adapt_weights(engine: "Engine", now_ns: int) -> int:
    """The market loop's tick (at the first candle closing at or after the next tick's time): update, record, save
    (durably before trading on, in a run whose intents are durable); returns when the next tick is due."""
    learning = engine.learning
    assert learning is not None
    updates = learning.tick(now_ns, engine.portfolio.round_trips)
    journal = engine.journal
    if updates is not None:
        settings = learning.settings
        for update in updates:
            if update.changed:
                payload = {
                    **_payload(
                        update.strategy,
                        update.before,
                        update.after,
                        update.reason,
                        settings.bounds(update.strategy),
                        now_ns,
                    ),
                    "score": update.score,
                    "score_kind": settings.score,
                    "gain": update.gain,
                    "multiplier": update.multiplier,
                    "trades": update.trades,
                    "rule": RULE,
                }
                journal.event(WEIGHT_CHANGED, "learning", payload)
        journal.event(
            LEARNING_TICK,
            "learning",
            {
                "market_time_ns": now_ns,
                "next_ns": learning.next_ns,
                "tick": learning.ticks,
                "strategies": {
                    u.strategy: {
                        "before": u.before,
                        "after": u.after,
                        "trades": u.trades,
                        "score": u.score,
                        "gain": u.gain,
                        "reason": u.reason,
                    }
                    for u in updates
                },
            },
        )
        if any(u.changed for u in updates):
            journal.mark_dirty("strategies")
    journal.set_kv(LEARNING_KV, learning.saved())
    if engine.options.durable_intents:
        await engine.writer.flush()
    if updates is not None:
        faults.hit("learning")
    return learning.next_ns
