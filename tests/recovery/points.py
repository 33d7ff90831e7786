"""Which kill points a campaign runs: a seeded, reproducible spread over every kind of durable boundary.

Each point kills a first run (after the n-th writer commit, venue call or market event, or by SIGKILL after a
fraction of a run's time); some also kill the first restart while it recovers; two kinds restart under lowered
caps. The same seed and scale always give the same points, so a failing point can be run again by its label.
"""

import random
from dataclasses import dataclass

from recovery.caps import VARIANTS
from recovery.child import Kill

__all__ = ["SAMPLE_SCALE", "KillPoint", "Mix", "Scale", "plan_points"]


@dataclass(frozen=True)
class Scale:
    """How many passes of each crash point a whole uninterrupted run makes (commits are approximate: the writer
    batches by timing)."""

    commits: int
    venue_calls: int
    events: int


# The shipped sample: about 53 commits, 49 orders, 720 candles (measured; the ranges below stay inside them).
SAMPLE_SCALE = Scale(commits=50, venue_calls=49, events=720)


@dataclass(frozen=True)
class Mix:
    """How many points of each kind to plan."""

    commit: int
    venue: int
    event: int
    timer: int
    recovery: int
    config: int

    @property
    def total(self) -> int:
        return self.commit + self.venue + self.event + self.timer + self.recovery + self.config

    @classmethod
    def spread(cls, total: int) -> "Mix":
        """``total`` points, mostly single kills over the four kinds, about one in eight also killed during
        recovery and one in sixteen (at least two) restarted under lowered caps."""
        config = max(2, total // 16)
        recovery = max(2, total // 8)
        single = max(total - config - recovery, 4)
        quarter, rest = divmod(single, 4)
        return cls(
            commit=quarter + (rest > 0),
            venue=quarter + (rest > 1),
            event=quarter + (rest > 2),
            timer=quarter,
            recovery=recovery,
            config=config,
        )


@dataclass(frozen=True)
class KillPoint:
    """One scenario: kill ``first``; optionally kill the first restart at ``recovery``; restart under a lowered
    configuration when ``config`` names a variant; then run to the end."""

    first: Kill
    recovery: Kill | None = None
    config: str | None = None

    @property
    def label(self) -> str:
        text = str(self.first)
        if self.recovery is not None:
            text += f"+recovery-{self.recovery}"
        if self.config is not None:
            text += f"+{self.config}"
        return text


def _single(rng: random.Random, kind: str, scale: Scale) -> Kill:
    # The upper tenth of each range is left out: the commit count varies by a few between runs, and a kill past
    # the end of the run would not be a kill.
    if kind == "commit":
        return Kill("commit", rng.randint(1, max(1, scale.commits * 9 // 10)))
    if kind == "venue":
        return Kill("venue", rng.randint(1, max(1, scale.venue_calls * 9 // 10)))
    if kind == "event":
        return Kill("event", rng.randint(1, max(1, scale.events * 9 // 10)))
    return Kill("timer", fraction=round(rng.uniform(0.1, 0.8), 2))


def _recovery(rng: random.Random) -> Kill:
    # While the restart recovers: its first commits (restoring, the start event), its first re-sent or new order,
    # its first resumed events, or early in its wall time (start-up and the strategies' warm-up take about a third
    # of a run). Small counts, so that the kill lands even when the first kill left little of the run.
    choice = rng.choice(("commit", "venue", "event", "timer"))
    if choice == "commit":
        return Kill("commit", rng.randint(1, 3))
    if choice == "venue":
        return Kill("venue", 1)
    if choice == "event":
        return Kill("event", rng.randint(1, 5))
    return Kill("timer", fraction=round(rng.uniform(0.05, 0.3), 2))


def _draw(rng: random.Random, category: str, scale: Scale, index: int) -> KillPoint:
    if category == "recovery":
        return KillPoint(_single(rng, rng.choice(("commit", "venue", "event", "timer")), scale), _recovery(rng))
    if category == "config":
        # Early enough (15-45 % of the events) that the strategies still buy after the restart.
        first = Kill("event", rng.randint(max(1, scale.events * 15 // 100), max(1, scale.events * 45 // 100)))
        return KillPoint(first, config=VARIANTS[index % len(VARIANTS)])
    return KillPoint(_single(rng, category, scale))


def plan_points(mix: Mix, scale: Scale, seed: int) -> list[KillPoint]:
    """The points of ``mix`` over a run of ``scale``, chosen by ``seed``, with unique labels: a repeated draw is
    drawn again, and when a kind's range is exhausted (a short run has only so many venue calls) the point is
    drawn from the larger ranges instead (events, then timers), so that the count asked is kept."""
    rng = random.Random(seed)
    points: list[KillPoint] = []
    labels: set[str] = set()
    for category in ("commit", "venue", "event", "timer", "recovery", "config"):
        for index in range(getattr(mix, category)):
            for kind in (category, "event", "timer"):
                point = _fresh(rng, kind, scale, index, labels)
                if point is not None:
                    labels.add(point.label)
                    points.append(point)
                    break
    return points


def _fresh(rng: random.Random, category: str, scale: Scale, index: int, labels: set[str]) -> KillPoint | None:
    for _ in range(100):
        point = _draw(rng, category, scale, index)
        if point.label not in labels:
            return point
    return None
