"""The long crash campaign: hundreds of SIGKILLs at seeded points of a replay, each restarted and checked.

The CI variant (``tests/recovery/test_crash_recovery.py``) runs 34 points over the shipped sample; this runs as
many as asked over a larger file, with the same driver: kill (after the n-th writer commit, venue call or market
event, or after a random fraction of a run), check the independent ledger on the killed state, restart (some
points kill the restart too; some restart under lowered caps), finish, and compare with the uninterrupted run.
Usage::

    python bench/crash_campaign.py [--points 300] [--data FILE] [--config TOML] [--seed S] [--jobs 2] [--keep DIR]

``--data`` defaults to ``../shared/data/kraken-ohlcvt/XBTUSD_60.csv`` (50,378 hourly candles, 5-15 s a run) when
present, else the shipped sample. The writer's commits per run are measured first by bisection (``--commits``
skips that). The tally counts a kill that did not land (the run ended first) as no kill, never as a pass: with
fewer kills landed than asked, it says so and claims nothing. Exit status: 0 all kills landed and every point
recovered, 1 a point found a problem, 2 the uninterrupted run itself failed, 3 too few kills landed.
"""

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

# The driver lives with the tests (the CI variant uses it too); the tests folder is how they import it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from recovery.child import Kill, run_child
from recovery.data import BIG_CSV
from recovery.driver import PointResult, Reference, ReferenceRunError, run_point, run_reference
from recovery.points import KillPoint, Mix, Scale, plan_points

KINDS = ("commit", "venue", "event", "timer")


def count_commits(workdir: Path, reference: Reference) -> int:
    """About how many commits the writer makes in a whole run: the largest n whose ``commit:n`` kill still lands
    (doubling, then bisection to within 2 %)."""
    probe = 0

    def lands(n: int) -> bool:
        nonlocal probe
        probe += 1
        db = workdir / f"probe-{probe}" / "state.db"
        db.parent.mkdir(parents=True)
        run = run_child(
            db, data=reference.data, config=reference.config, kill=Kill("commit", n), timeout_s=reference.timeout_s
        )
        return run.killed

    low, high = 0, 32
    while lands(high):
        low, high = high, high * 2
    while high - low > max(1, low // 50):
        middle = (low + high) // 2
        low, high = (middle, high) if lands(middle) else (low, middle)
    return max(low, 1)


def _reason_group(reason: str) -> str:
    """A failure reason with its ids and amounts blanked, so that one cause is counted once."""
    reason = re.sub(r"\b[0-9a-f]{6}-\d{9}(-\d+)?\b", "<order>", reason)
    return re.sub(r"\d[\d.]{2,}", "<n>", reason)[:160]


def _line(done: int, total: int, result: PointResult) -> str:
    status = "killed" if result.landed else "NO KILL"
    if result.recovery_landed is not None:
        status += ", recovery killed" if result.recovery_landed else ", recovery NO KILL"
    if result.findings:
        first = result.findings[0]
        more = f" (+{len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        return f"[{done:4d}/{total}] {result.point.label}: {status}; {first}{more}"[:220]
    return f"[{done:4d}/{total}] {result.point.label}: {status}; ok"


def _print_groups(title: str, groups: Counter[str]) -> None:
    print(f"{title}: {sum(groups.values()) or 'none'}")
    for key, n in groups.most_common():
        print(f"  {n:4d}  {key}")


def _tally(results: list[PointResult], points: list[KillPoint], asked_points: int, elapsed_s: float) -> int:
    asked = Counter(p.first.point for p in points)
    landed = Counter(r.point.first.point for r in results if r.landed)
    recovery_asked = sum(p.recovery is not None for p in points)
    recovery_landed = sum(bool(r.recovery_landed) for r in results)
    kills = sum(landed.values()) + recovery_landed
    kills_asked = asked_points + recovery_asked
    print(f"\n== tally: {len(results)} of {asked_points} points asked run in {elapsed_s:.0f} s")
    print("kills landed: " + ", ".join(f"{k} {landed[k]}/{asked[k]}" for k in KINDS if asked[k]))
    print(f"kills during recovery landed: {recovery_landed}/{recovery_asked}")
    no_kill = [r.point.label for r in results if not r.landed]
    if no_kill:
        print(f"no kill (the run ended first, or failed): {len(no_kill)}: {', '.join(no_kill[:10])}")
    no_recovery_kill = [r.point.label for r in results if r.recovery_landed is False]
    if no_recovery_kill:
        print(f"no kill during recovery (it ended first): {', '.join(no_recovery_kill[:10])}")
    for title, kinds in (
        ("first runs that failed or hung", ("first_run_failed", "hung")),
        ("restarts that failed", ("restart_failed",)),
    ):
        found = [f for r in results for f in r.findings if f.kind in kinds]
        print(f"{title}: {len(found)}")
        for reason, n in Counter(_reason_group(f.reason) for f in found).most_common():
            print(f"  {n:4d}  {reason}")
    for title, prefix in (
        ("invariant violations (points; by kind and state)", "invariant:"),
        ("divergences from the uninterrupted run (points; by kind)", "divergence:"),
    ):
        groups = Counter(
            key
            for r in results
            for key in {f"{f.kind.removeprefix(prefix)} [{f.phase}]" for f in r.findings if f.kind.startswith(prefix)}
        )
        _print_groups(title, groups)
    other = ("events_once", "cap", "cap_unchecked")
    _print_groups(
        "other findings (points)", Counter(k for r in results for k in {f.kind for f in r.findings} & set(other))
    )
    failing = [r for r in results if r.findings]
    clean = sum(1 for r in results if r.landed and not r.findings)
    print(f"points with a kill that recovered cleanly: {clean}/{len(points)}")
    for r in failing[:20]:
        print(f"  FAIL {r.point.label}: {r.findings[0]}"[:220])
    if failing:
        print(f"verdict: FAIL: {len(failing)} of {len(results)} points found a problem")
        return 1
    if kills < kills_asked or len(results) < asked_points:
        print(f"verdict: INCONCLUSIVE: only {kills} of {kills_asked} kills landed; no success is claimed")
        return 3
    print(f"verdict: PASS: all {kills_asked} kills landed and every point recovered to the uninterrupted state")
    return 0


def _campaign(args: argparse.Namespace, root: Path) -> int:
    data: Path | None = args.data if args.data is not None else (BIG_CSV if BIG_CSV.exists() else None)
    print(f"data: {data if data is not None else 'the shipped sample (../shared CSV absent)'}")
    try:
        reference = run_reference(root / "reference", data, config=args.config)
    except ReferenceRunError as exc:
        print(f"verdict: {exc}")
        return 2
    print(
        f"uninterrupted run: {reference.run_s:.1f} s, {reference.events} events, {reference.orders} orders, "
        f"cursor {reference.cursor}, ledger {'clean' if not reference.violations else reference.violations}"
    )
    if reference.violations or reference.cursor != reference.events:
        print("verdict: the uninterrupted run itself breaks the ledger; nothing can be compared with it")
        return 2
    commits = args.commits or count_commits(root / "calibration", reference)
    scale = Scale(commits=commits, venue_calls=max(reference.orders, 1), events=reference.events)
    points = plan_points(Mix.spread(args.points), scale, args.seed)
    print(f"scale: ~{commits} commits, {scale.venue_calls} venue calls, {scale.events} events per run")
    print(f"{len(points)} points, seed {args.seed}, {args.jobs} jobs\n")
    started = time.monotonic()
    results: list[PointResult] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_point, p, reference, root / f"point-{i:04d}") for i, p in enumerate(points)]
        try:
            for future in as_completed(futures):
                results.append(future.result())
                print(_line(len(results), len(points), results[-1]), flush=True)
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            print("\ninterrupted: the tally covers the points that ended")
    return _tally(results, points, args.points, time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=300, help="kill points to run (default 300)")
    parser.add_argument("--data", type=Path, help="file to replay (default: ../shared XBTUSD_60.csv, else the sample)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the points (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="points run at once (default 2)")
    parser.add_argument("--commits", type=int, help="writer commits per run (default: measured by bisection)")
    parser.add_argument("--keep", type=Path, help="keep every state file under this folder")
    parser.add_argument(
        "--config",
        type=Path,
        help="configuration of every run (e.g. bench/crash_guards.toml: guards, limit entries, breakers, reserve)",
    )
    args = parser.parse_args()
    if args.points < 1 or args.jobs < 1:
        parser.error("--points and --jobs must be at least 1")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _campaign(args, args.keep)
    with tempfile.TemporaryDirectory(prefix="crash-campaign-") as tmp:
        return _campaign(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
