"""The crash test, fast variant: the engine killed with SIGKILL at 34 points of a replay of the shipped sample.

Each point is its own test case, named by its kill (``commit:9``, ``venue:31``, ``event:400``, ``timer@0.57``,
``...+recovery-commit:3`` when the restart is killed too, ``...+lowered-caps`` when it restarts under lower caps),
so that a failure names the point; its message lists every finding (see :mod:`recovery.driver`). The points are
seeded; ``python bench/crash_campaign.py`` runs hundreds more.

Two children run at once: the points selected for this session are started in the background when the first of
them is asked for, and each test waits (bounded) for its own. A point whose kill did not land (the run, or the
restart for a kill during recovery, ended first) is skipped, not passed: it did not test what it is named for.
"""

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from recovery.driver import PointResult, Reference, run_point, run_reference
from recovery.points import SAMPLE_SCALE, KillPoint, Mix, plan_points

SEED = 20251110
MIX = Mix(commit=8, venue=7, event=7, timer=6, recovery=4, config=2)
POINTS = plan_points(MIX, SAMPLE_SCALE, SEED)
JOBS = 2


class Campaign:
    """The selected points, run two at a time in the background, in the order the tests will ask for them."""

    def __init__(self, points: list[KillPoint], reference: Reference, root: Path) -> None:
        self.reference = reference
        self._pool = ThreadPoolExecutor(max_workers=JOBS, thread_name_prefix="crash-point")
        self._futures: dict[str, Future[PointResult]] = {}
        self._order = [p.label for p in points]
        for index, point in enumerate(points):
            self._futures[point.label] = self._pool.submit(run_point, point, reference, root / f"{index:02d}")

    def result(self, point: KillPoint) -> PointResult:
        # A point runs at most three children, each bounded by the reference's timeout; the points queued
        # before it run two at a time.
        ahead = self._order.index(point.label) // JOBS + 1
        return self._futures[point.label].result(timeout=ahead * 3 * self.reference.timeout_s)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def selected_points(request: pytest.FixtureRequest) -> set[str]:
    """The labels of the kill points of ``request``'s module that this session runs."""
    return {
        point.label
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module and hasattr(item, "callspec")
        for point in [item.callspec.params.get("point")]
        if isinstance(point, KillPoint)
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The uninterrupted run of the same command on a fresh file."""
    return run_reference(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def campaign(
    request: pytest.FixtureRequest, reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Campaign]:
    # Only the points this session selected (``-k``): the others are not run in the background for nothing.
    selected = selected_points(request)
    running = Campaign([p for p in POINTS if p.label in selected], reference, tmp_path_factory.mktemp("points"))
    yield running
    running.close()


def test_the_plan_covers_every_kind_of_kill() -> None:
    kinds = [p.first.point for p in POINTS if p.recovery is None and p.config is None]
    assert len(POINTS) >= 30
    assert len({p.label for p in POINTS}) == len(POINTS)
    assert {k: kinds.count(k) for k in ("commit", "venue", "event", "timer")} == {
        "commit": MIX.commit,
        "venue": MIX.venue,
        "event": MIX.event,
        "timer": MIX.timer,
    }
    assert sum(p.recovery is not None for p in POINTS) == MIX.recovery
    assert sorted(p.config for p in POINTS if p.config is not None) == ["lowered-caps", "saved-limits"]


def test_the_uninterrupted_run_satisfies_the_ledger(reference: Reference) -> None:
    # Without this the comparisons below would hold every resumed run to a broken standard. (Two uninterrupted
    # runs ending alike, i.e. a deterministic replay, is checked by run_reference itself.)
    assert reference.violations == ()
    assert reference.cursor == reference.events == 720
    assert reference.orders > 0


@pytest.mark.parametrize("point", POINTS, ids=[p.label for p in POINTS])
def test_a_killed_run_resumes_to_the_uninterrupted_state(point: KillPoint, campaign: Campaign) -> None:
    result = campaign.result(point)
    if not result.findings and not result.landed:
        pytest.skip(f"{point.label}: the run ended before the kill, so nothing was tested")
    if not result.findings and result.recovery_landed is False:
        pytest.skip(f"{point.label}: the restart ended before its kill (the first kill recovered cleanly)")
    if result.findings:
        pytest.fail(result.summary(), pytrace=False)  # the findings are the message; a traceback adds nothing
    assert result.landed
