"""The facade's optimisation (the MCP tool ``optimize``): ``trading-mcp optimize``'s own search, checked, bounded
and run in a killable worker process, answered with a summary.

* Every argument is checked before anything runs (:func:`checked_request`): the strategy kind, the ranges (the
  CLI's ``--param`` syntax, through :func:`engine.research.space.parse_space`), the number of trials (at most
  :data:`MAX_TRIALS` per search) and of walk-forward folds (at most :data:`MAX_FOLDS`), the objective, the sampler,
  the window, and a data name confined to the engine's data folder or the shipped sample exactly as ``backtest``'s
  (:func:`engine.runtime.backtest_run.checked_data`).
* The search is :func:`engine.research.run.optimize` with one local worker, over the running engine's
  configuration (paper account, fees, account rules; no risk limits, as a backtest), in a worker process
  (:func:`engine.runtime.worker_process.run_in_worker`): off the event loop, one at a time, killed when the caller
  is cancelled or after :data:`OPTIMIZE_TIMEOUT_S`. Each finished trial is reported as progress.
* A finished run is saved, whole and in one transaction, in ``<data_dir>/optimize.db`` (where ``trading-mcp
  optimize --list`` finds it, and ``--rerun ID`` repeats it on the same configuration) after the worker answered:
  a run cancelled or stopped saves nothing.
* The answer is an :class:`~engine.runtime.views.OptimizeView`: the best parameters with their figures, each
  fold's in-sample and out-of-sample figures, the deflated Sharpe ratio and the warnings, and at most
  :data:`TOP_TRIALS` trials, never every one.

Errors: :class:`~engine.errors.InvalidRequest` (a bad argument, a file that is not a replayable data file, a run
over its time), :class:`~engine.errors.NotAllowed` (another optimisation is running).
"""

import re
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidRequest
from engine.exchanges.replay.errors import ReplayError
from engine.research.errors import OptimizeError
from engine.research.objective import OBJECTIVES, TrialResult
from engine.research.run import OptimizeRequest, OptimizeResult, optimize
from engine.research.search import SAMPLERS
from engine.research.space import parse_space
from engine.runtime.app import EngineError
from engine.runtime.backtest_run import BacktestError, checked_data, refuse_book_strategy
from engine.runtime.config import Config, ConfigError
from engine.runtime.facade import iso
from engine.runtime.views import (
    BacktestWindowView,
    OptimizeFoldView,
    OptimizeTrialView,
    OptimizeView,
    OptimizeWindowView,
)
from engine.runtime.worker_process import ProgressFn, Reporter, run_in_worker
from engine.strategies import ParamError, strategy_class

if TYPE_CHECKING:
    from engine.persistence.optimize_runs import NewRun, NewTrial

__all__ = [
    "MAX_FOLDS",
    "MAX_TRIALS",
    "OPTIMIZE_TIMEOUT_S",
    "TOP_TRIALS",
    "checked_request",
    "optimize_in_worker",
    "optimize_summary",
    "saved_runs_db",
]

OPTIMIZE_TIMEOUT_S = 600.0
"""How long an optimisation may run before its worker process is killed (nothing is saved then)."""
MAX_TRIALS = 200
"""The most trials a client may ask for per search (per fold with walk-forward)."""
MAX_FOLDS = 5
"""The most walk-forward folds a client may ask for."""
TOP_TRIALS = 5
"""How many of the best trials the summary lists."""
_CLI_FLAG = re.compile(r"--(param|walk-forward|trials|objective|sampler)\b")


def saved_runs_db(base: Config) -> Path:
    """Where finished runs are saved: ``trading-mcp optimize``'s default database (``<data_dir>/optimize.db``)."""
    return base.data_dir / "optimize.db"


def _plain(message: str) -> str:
    """A research error in the tool's words: ``range fast=...`` and ``walk_forward`` rather than CLI flags."""
    return _CLI_FLAG.sub(lambda m: "range" if m[1] == "param" else m[1].replace("-", "_"), message)


def checked_request(
    base: Config,
    *,
    kind: str,
    ranges: Sequence[str],
    pair: str,
    data: str,
    start: str | None = None,
    end: str | None = None,
    trials: int = 50,
    objective: str = "sharpe",
    walk_forward: int = 0,
    sampler: str = "tpe",
    seed: int = 1,
) -> OptimizeRequest:
    """The optimisation a client asks for, every argument checked (see the module docstring).

    Raises:
        InvalidRequest: the first argument refused, in one sentence.
    """
    if not 1 <= trials <= MAX_TRIALS:
        raise InvalidRequest(f"trials {trials}: give 1 to {MAX_TRIALS} (per search; per fold with walk_forward)")
    if not 0 <= walk_forward <= MAX_FOLDS:
        raise InvalidRequest(f"walk_forward {walk_forward}: give 0 (none) to {MAX_FOLDS} folds")
    for name, value, allowed in (("objective", objective, OBJECTIVES), ("sampler", sampler, SAMPLERS)):
        if value not in allowed:
            raise InvalidRequest(f"{name} {value[:40]!a} is not one of {', '.join(allowed)}")
    try:
        space = parse_space(strategy_class(kind), list(ranges))
        if sampler == "grid":
            space.grid()
        refuse_book_strategy(kind)
    except (ParamError, OptimizeError, BacktestError) as exc:
        raise InvalidRequest(_plain(str(exc))) from None
    path, start_ns, end_ns = checked_data(base, pair, data, start, end)
    return OptimizeRequest(
        data=path,
        strategy=kind,
        params=tuple(ranges),
        pair=pair,
        trials=trials,
        objective=objective,
        walk_forward=walk_forward,
        sampler=sampler,
        seed=seed,
        base=_exact(base.model_dump(mode="json")),
        start_ns=start_ns,
        end_ns=end_ns,
    )


def _exact(value: Any) -> Any:
    """JSON the saved run's codec stores exactly: a float (a few timing settings) as its shortest text, which the
    configuration reads back as the same float."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def _trial(trial: TrialResult | None, *, numbered: bool = True) -> OptimizeTrialView | None:
    if trial is None:
        return None
    from engine.research.report import trial_json

    shown = trial_json(trial)
    return OptimizeTrialView(
        trial=trial.number if numbered else None,
        params=dict(trial.params),
        objective=shown["objective"],
        metrics=dict(shown["metrics"] or {}),
    )


def _window(span: tuple[int, int] | None, candles: int) -> OptimizeWindowView:
    start, end = span if span is not None else (0, 0)
    return OptimizeWindowView(start=iso(start) or "", end=iso(end) or "", candles=candles)


def optimize_view(
    result: OptimizeResult, summary: Mapping[str, Any], data_name: str, run_id: int | None = None
) -> OptimizeView:
    """The summary of a finished run."""
    r = result.request
    folds = [
        OptimizeFoldView(
            fold=f.fold.index,
            in_sample=_window(f.span_ns.get("in_sample"), len(f.fold.train)),
            in_sample_best=_trial(f.best),
            out_of_sample=None if f.fold.test is None else _window(f.span_ns.get("out_of_sample"), len(f.fold.test)),
            out_of_sample_result=_trial(f.oos, numbered=False),
            trials=len(f.trials),
            deflated_sharpe=None if f.dsr is None else f"{f.dsr.value:.6f}",
            warning=f.warning(r.objective),
        )
        for f in result.folds
    ]
    last = result.folds[-1]
    spans = last.span_ns
    first_open = spans["in_sample"][0]
    last_close = spans.get("out_of_sample", spans["in_sample"])[1]
    complete = [t for t in last.trials if t.state == "complete" and t.value is not None]
    top = sorted(complete, key=lambda t: (-(t.value or Decimal(0)), t.number))[:TOP_TRIALS]
    walk = summary.get("walk_forward") or {}
    return OptimizeView(
        data=data_name,
        strategy=r.strategy,
        pair=result.pair,
        window=BacktestWindowView(
            start=iso(first_open) or "",
            end=iso(last_close) or "",
            candles=result.candles,
            requested_start=iso(r.start_ns),
            requested_end=iso(r.end_ns),
        ),
        objective=r.objective,
        sampler=r.sampler,
        seed=r.seed,
        searched=list(summary["searched"]),
        fixed=dict(summary["fixed"]),
        trials=len(result.trials),
        trial_states=dict(summary["trial_states"]),
        best_params=None if result.best is None else dict(result.best.params),
        best=_trial(result.best),
        deflated_sharpe=None if last.dsr is None else f"{last.dsr.value:.6f}",
        significant=None if last.dsr is None else last.dsr.significant,
        folds=folds,
        out_of_sample_mean_objective=walk.get("out_of_sample_mean_objective"),
        top_trials=[view for view in (_trial(t) for t in top) if view is not None],
        warnings=list(summary["warnings"]),
        duration_s=Decimal(f"{result.elapsed_s:.3f}"),
        run_id=run_id,
        notes=list(result.notes),
    )


def optimize_summary(
    request: OptimizeRequest, data_name: str, *, report: Reporter
) -> tuple[OptimizeView, "NewRun", list["NewTrial"]]:
    """Run the search (the worker process runs this), reporting each trial; the summary and the rows to save. A
    refusal comes back as :class:`InvalidRequest`, with the file's path replaced by the name the client gave.
    """
    from engine.research.report import run_rows, summary_json
    from engine.research.walk_forward import Progress

    def heard(p: Progress) -> None:
        fold = f", fold {p.fold} of {p.folds}" if p.folds > 1 else ""
        best = "none yet" if p.best is None else format(p.best, "f")
        report(p.done, p.total, f"trial {p.done} of {p.total}{fold}; best {request.objective} so far: {best}")

    try:
        result = optimize(request, heard)
    except (OptimizeError, BacktestError, ConfigError, EngineError, ReplayError, ParamError, OSError) as exc:
        message = _plain(str(exc)).replace(str(request.data), data_name).rstrip(".")
        raise InvalidRequest(message) from None
    summary = summary_json(result)
    run, trials = run_rows(result, summary, time.time_ns(), None)
    return optimize_view(result, summary, data_name), run, trials


def _save(db: Path, run: "NewRun", trials: list["NewTrial"]) -> int:
    from engine.persistence import Store
    from engine.persistence.optimize_runs import save_run

    db.parent.mkdir(parents=True, exist_ok=True)
    with Store.open(db) as store:
        return save_run(store, run, trials)


async def optimize_in_worker(
    base: Config,
    request: OptimizeRequest,
    data_name: str,
    *,
    save: bool = True,
    progress: ProgressFn | None = None,
    timeout_s: float = OPTIMIZE_TIMEOUT_S,
) -> OptimizeView:
    """Run a checked request (:func:`checked_request`) in a worker process within ``timeout_s``, reporting each
    trial to ``progress``; save the finished run (with ``save``) and answer its summary.

    Raises:
        InvalidRequest: the data or the search refused, or the run over its time (killed, nothing saved).
        NotAllowed: another optimisation is running.
    """
    import anyio

    async def ignore(_done: float, _total: float, _message: str) -> None:
        return None

    view, run, trials = await run_in_worker(
        optimize_summary,
        request,
        data_name,
        kind="optimisation",
        timeout_s=timeout_s,
        too_long="nothing was saved: ask for fewer trials, fewer folds or a shorter window",
        progress=progress or ignore,
    )
    if not save:
        return view
    run_id = await anyio.to_thread.run_sync(_save, saved_runs_db(base), run, trials)
    return view.model_copy(update={"run_id": run_id})
