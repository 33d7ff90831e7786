"""The crash test with the account's protections on (``guards_sample.toml``: every position guard, limit entries
that rest, fill in parts, expire and are repriced, a circuit breaker, the profit reserve): SIGKILL at seeded points
of a replay of the shipped sample, each restarted and compared with the uninterrupted run, as in
:mod:`recovery.test_crash_recovery` (whose driver and background campaign this reuses).
``python bench/crash_campaign.py --config bench/crash_guards.toml`` runs hundreds more on the hourly history.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from recovery.driver import Reference, run_reference
from recovery.points import KillPoint, Mix, Scale, plan_points
from recovery.test_crash_recovery import Campaign, selected_points

CONFIG = Path(__file__).with_name("guards_sample.toml")
# Measured on the sample with this configuration: ~30 writer commits, 22 orders, 720 candles.
SCALE = Scale(commits=26, venue_calls=20, events=720)
MIX = Mix(commit=3, venue=3, event=2, timer=2, recovery=2, config=0)
POINTS = plan_points(MIX, SCALE, 20261205)


@pytest.fixture(scope="module")
def guarded_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return run_reference(tmp_path_factory.mktemp("guarded-reference"), config=CONFIG)


@pytest.fixture(scope="module")
def guarded_campaign(
    request: pytest.FixtureRequest, guarded_reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Campaign]:
    selected = selected_points(request)
    running = Campaign([p for p in POINTS if p.label in selected], guarded_reference, tmp_path_factory.mktemp("gp"))
    yield running
    running.close()


def test_the_guarded_run_uses_what_it_is_named_for(guarded_reference: Reference) -> None:
    assert guarded_reference.violations == ()
    assert guarded_reference.cursor == guarded_reference.events == 720
    assert guarded_reference.orders >= 15, "limit entries, reprices and guard exits must be in the run"


@pytest.mark.parametrize("point", POINTS, ids=[p.label for p in POINTS])
def test_a_killed_guarded_run_resumes_to_the_uninterrupted_state(point: KillPoint, guarded_campaign: Campaign) -> None:
    result = guarded_campaign.result(point)
    if not result.findings and not result.landed:
        pytest.skip(f"{point.label}: the run ended before the kill, so nothing was tested")
    if not result.findings and result.recovery_landed is False:
        pytest.skip(f"{point.label}: the restart ended before its kill (the first kill recovered cleanly)")
    if result.findings:
        pytest.fail(result.summary(), pytrace=False)
    assert result.landed
