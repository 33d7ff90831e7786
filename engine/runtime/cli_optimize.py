"""``trading-mcp optimize``: search a strategy's parameters over a data file, with walk-forward evidence.

Each trial is a ``trading-mcp backtest`` of one parameter set (the same engine path, in-process, the file loaded
once per worker process); :mod:`engine.research` holds the search, the folds and the deflated Sharpe ratio. A
finished run is saved in ``--db`` (default ``<data_dir>/optimize.db``, beside the engine's state but not in it:
``run --reset`` never takes the research with it) in one transaction; Ctrl-C saves nothing. ``--list`` lists the
saved runs, ``--rerun ID`` runs one again from its saved arguments (refused if its data or config file changed
since) and says whether it gave the same best parameters and metrics (exit status 1 when not).

Output: the result only on stdout (text, or ``--json``: a summary, not every trial unless ``--trials-out FILE``);
a progress line on stderr (trials done / total, rate, time left, best so far), rewritten in place on a terminal;
otherwise a plain line after the first trial, every 10 s and at the end; none with ``--no-progress``. The research
modules (and Optuna) are imported only when the command runs, never by the other commands.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from engine.research.errors import OptimizeError

__all__ = ["OptimizeError", "ProgressLine", "add_optimize_parser", "cmd_optimize", "default_db"]

OBJECTIVE_CHOICES = ("sharpe", "sortino", "calmar", "return")
SAMPLER_CHOICES = ("tpe", "random", "grid")
EXIT_INTERRUPTED = 130
PLAIN_EVERY_S = 10.0


def add_optimize_parser(sub: Any) -> None:
    op = sub.add_parser("optimize", help="search a strategy's parameters over a data file (walk-forward, saved runs)")
    op.add_argument("--data", type=Path, help="Kraken OHLCVT CSV, or REST OHLC or Trades JSON")
    op.add_argument("--strategy", help="strategy kind (trading-mcp strategies lists them)")
    op.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:STEP]",
        help="a range to search, or NAME=VALUE to fix a parameter (repeatable)",
    )
    op.add_argument("--pair", help="pair the data is traded as, in any spelling (default BTC/USD)")
    op.add_argument("--interval", type=int, help="candle interval in minutes (inferred when omitted)")
    op.add_argument("--trials", type=int, help="trials per search, per fold with --walk-forward (default 200)")
    op.add_argument("--objective", choices=OBJECTIVE_CHOICES, help="what to maximise (default sharpe)")
    op.add_argument("--walk-forward", type=int, metavar="K", help="K anchored folds, each tested out of sample")
    op.add_argument("--sampler", choices=SAMPLER_CHOICES, help="Optuna sampler (default tpe)")
    op.add_argument("--seed", type=int, help="the samplers' seed (default 1)")
    op.add_argument("--batch", type=int, help="trials proposed per round (default max(8, workers))")
    op.add_argument("--workers", type=int, default=1, help="worker processes (or Ray CPUs) running trials")
    op.add_argument("--backend", choices=("local", "ray"), default="local", help="local processes or Ray tasks")
    op.add_argument("--address", help="with --backend ray: the cluster to join (default: start a local Ray)")
    op.add_argument("--config", type=Path, help="TOML config (paper account, fees, and [risk] with --risk-limits)")
    op.add_argument("--risk-limits", choices=("none", "config"), help="as for backtest (default none)")
    op.add_argument("--db", type=Path, help="SQLite file the runs are saved in (default: <data_dir>/optimize.db)")
    op.add_argument("--json", action="store_true", help="print the summary as JSON")
    op.add_argument("--trials-out", type=Path, metavar="FILE", help="also write every trial to FILE (JSON)")
    op.add_argument("--no-progress", action="store_true", help="no progress line")
    op.add_argument("--list", action="store_true", help="list the saved runs")
    op.add_argument("--rerun", type=int, metavar="ID", help="run saved run ID again and compare")


def default_db(args: argparse.Namespace) -> Path:
    """``--db``, else ``optimize.db`` in the configuration's data directory."""
    from engine.runtime.config import load_config

    db: Path | None = args.db
    return db if db is not None else load_config(args.config).data_dir / "optimize.db"


class ProgressLine:
    """Trials done / total, trials per second, time left and the best objective so far, on ``stream``."""

    def __init__(self, stream: IO[str], objective: str, *, enabled: bool) -> None:
        self.stream = stream
        self.objective = objective
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.started = time.perf_counter()
        self.printed_at = self.started
        self.done = 0
        self.total = 0

    def __call__(self, progress: Any) -> None:
        self.done, self.total = progress.done, progress.total
        if not self.enabled:
            return
        now = time.perf_counter()
        final = progress.done == progress.total
        first = progress.done == 1
        if not self.tty and not (first or final) and now - self.printed_at < PLAIN_EVERY_S:
            return
        self.printed_at = now
        rate = progress.done / max(now - self.started, 1e-9)
        left = (progress.total - progress.done) / rate if rate > 0 else 0.0
        best = "-" if progress.best is None else format(progress.best, "f")
        fold = f", fold {progress.fold}/{progress.folds}" if progress.folds > 1 else ""
        line = (
            f"optimize: {progress.done}/{progress.total} trials{fold}, {rate:.2f}/s, ETA {_clock(left)}, "
            f"best {self.objective} {best}"
        )
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _request(args: argparse.Namespace) -> Any:
    from engine.research.run import OptimizeRequest

    if args.data is None or args.strategy is None:
        raise OptimizeError("give --data and --strategy (or --list, or --rerun ID)")
    given = {name: getattr(args, name) for name in _SEARCH_OPTIONS if getattr(args, name) is not None}
    return OptimizeRequest(
        params=tuple(args.param), workers=args.workers, backend=args.backend, address=args.address, **given
    )


# What decides a run's result (the request's search fields): a rerun takes them from the saved run, never from here.
_SEARCH_OPTIONS = (
    "data",
    "strategy",
    "pair",
    "interval",
    "trials",
    "objective",
    "walk_forward",
    "sampler",
    "seed",
    "batch",
    "config",
    "risk_limits",
)


def _rerun_request(args: argparse.Namespace, saved: Any) -> Any:
    """The saved run's request, with this command's workers and backend; refused if its files changed."""
    from engine.research.run import OptimizeRequest, file_digest

    given = [f"--{name.replace('_', '-')}" for name in _SEARCH_OPTIONS if getattr(args, name) is not None]
    if args.param:
        given.append("--param")
    if given:
        raise OptimizeError(
            f"--rerun {saved.id} repeats the saved run's own arguments: leave out {', '.join(given)} (only --workers, "
            "--backend, --address, --db, --json and --no-progress apply)"
        )
    request = OptimizeRequest.from_args(saved.args, workers=args.workers, backend=args.backend, address=args.address)
    if not request.data.is_file() or file_digest(request.data) != saved.data_sha256:
        raise OptimizeError(
            f"run {saved.id}'s data file {request.data} is missing or has changed since: cannot rerun it"
        )
    config_digest = saved.args.get("config_sha256")
    if request.config is not None and (not request.config.is_file() or file_digest(request.config) != config_digest):
        raise OptimizeError(
            f"run {saved.id}'s config file {request.config} is missing or has changed since: cannot rerun it"
        )
    return request


def cmd_optimize(args: argparse.Namespace) -> int:
    from engine.persistence import Store
    from engine.persistence.optimize_runs import load_run, save_run
    from engine.research.report import render_optimize, run_rows, summary_json, trials_json
    from engine.research.run import optimize

    db = default_db(args)
    if args.list:
        return _list(db, as_json=args.json)
    saved = None
    if args.rerun is not None:
        if not db.is_file():
            raise OptimizeError(f"no saved optimisation runs in {db}")
        with Store.open(db) as store:
            saved = load_run(store, args.rerun)
        if saved is None:
            raise OptimizeError(f"there is no run {args.rerun} in {db} (trading-mcp optimize --list lists them)")
        request = _rerun_request(args, saved)
    else:
        request = _request(args)
    progress = ProgressLine(sys.stderr, request.objective, enabled=not args.no_progress)
    try:
        result = optimize(request, progress)
    except KeyboardInterrupt:
        print(
            f"\ntrading-mcp optimize: interrupted after {progress.done} of {progress.total} trials; nothing saved",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    for note in result.notes:
        print(f"trading-mcp optimize: {note}", file=sys.stderr)
    summary = summary_json(result)
    run, trials = run_rows(result, summary, time.time_ns(), None if saved is None else saved.id)
    with Store.open(db) as store:
        run_id = save_run(store, run, trials)
    if args.trials_out is not None:
        args.trials_out.write_text(json.dumps(trials_json(result), indent=2) + "\n", encoding="utf-8")
    same = saved is None or _same_best(saved, run)
    if args.json:
        extra: dict[str, Any] = {"run_id": run_id, "db": str(db)}
        if saved is not None:
            extra.update(rerun_of=saved.id, reproduced=same)
        print(json.dumps({**extra, **summary}, indent=2))
    else:
        print(render_optimize(result, summary, run_id))
    if saved is not None:
        verdict = "reproduces" if same else "does NOT reproduce"
        message = f"run {run_id} {verdict} run {saved.id}'s best parameters and metrics"
        print(f"trading-mcp optimize: {message}", file=sys.stderr)
    return 0 if same else 1


def _same_best(saved: Any, run: Any) -> bool:
    from engine.persistence.codec import from_json, to_json

    def norm(value: Any) -> Any:
        return None if value is None else from_json(to_json(value))

    return bool(
        norm(saved.best_params) == norm(run.best_params)
        and saved.best_value == run.best_value
        and norm(saved.best_metrics) == norm(run.best_metrics)
    )


def _list(db: Path, *, as_json: bool) -> int:
    from engine.persistence import Store
    from engine.persistence.optimize_runs import list_runs

    runs = []
    if db.is_file():
        with Store.open(db) as store:
            runs = list_runs(store)
    rows: list[dict[str, Any]] = [
        {
            "id": run.id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.created_ts_ns / 1e9)),
            "strategy": run.strategy,
            "data": run.data,
            "objective": run.objective,
            "sampler": run.sampler,
            "seed": run.seed,
            "trials": run.trials,
            "walk_forward": run.folds,
            "best_value": None if run.best_value is None else format(run.best_value, "f"),
            "best_params": run.best_params,
            "rerun_of": run.rerun_of,
        }
        for run in runs
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no saved optimisation runs in {db}")
        return 0
    header = f"{'id':>4}  {'created':<20}  {'strategy':<15} {'objective':<9} {'sampler':<7} {'seed':>5} {'trials':>6}"
    print(f"{header}  best")
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in (r["best_params"] or {}).items())
        wf = f" wf{r['walk_forward']}" if r["walk_forward"] else ""
        print(
            f"{r['id']:>4}  {r['created']:<20}  {r['strategy']:<15} {r['objective']:<9} {r['sampler']:<7} "
            f"{r['seed']:>5} {r['trials']:>6}  {r['best_value'] or '-'} {params}{wf}  {Path(r['data']).name}"
        )
    return 0
