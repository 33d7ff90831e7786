"""An optimisation's result as ``--json`` prints it, as text, and as the rows it is saved as.

The summary holds the best parameters and objective, each fold's in-sample and out-of-sample figures side by
side, the deflated Sharpe ratio and the trial counts, never every trial (``--trials-out FILE`` writes those).
Every figure is a string (Decimals in plain digits, the deflated Sharpe figures to 6 places) or an int.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from statistics import fmean
from typing import Any

from engine.persistence.optimize_runs import NewRun, NewTrial
from engine.research.deflated import DeflatedSharpe
from engine.research.objective import TrialResult, Window
from engine.research.run import OptimizeResult
from engine.research.walk_forward import FoldResult

__all__ = [
    "SHOWN_METRICS",
    "render_optimize",
    "run_rows",
    "summary_json",
    "trial_json",
    "trials_json",
    "window_json",
]

SHOWN_METRICS = (
    "total_return",
    "annual_return",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "trade_count",
    "win_rate",
    "fees_paid",
)


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def window_json(window: Window, span: tuple[int, int] | None) -> dict[str, Any]:
    """Where a window lies: its first candle's open, its last candle's close, how many candles."""
    start, end = span if span is not None else (0, 0)
    return {"from": _iso(start), "to": _iso(end), "candles": len(window)}


def trial_json(trial: TrialResult | None, *, every_metric: bool = False) -> dict[str, Any]:
    """A trial's parameters, objective and metrics (the shown ones unless ``every_metric``)."""
    if trial is None:
        return {"params": None, "objective": None, "metrics": None}
    metrics = trial.metrics if every_metric else {k: trial.metrics.get(k) for k in SHOWN_METRICS if trial.metrics}
    return {"params": trial.params, "objective": _text(trial.value), "metrics": metrics}


def trials_json(result: OptimizeResult) -> list[dict[str, Any]]:
    """Every trial (for ``--trials-out``): number, fold, state, parameters, objective, all metrics, and the
    window it saw."""
    rows = []
    for trial in result.trials:
        row = {"trial": trial.number, "fold": trial.fold, "state": trial.state, **trial_json(trial, every_metric=True)}
        row["note"] = trial.note
        row["saw"] = {
            "from": _iso(trial.seen_first_open_ns) if trial.candles else None,
            "to": _iso(trial.seen_last_close_ns) if trial.candles else None,
            "candles": trial.candles,
        }
        rows.append(row)
    return rows


def _dsr_json(dsr: DeflatedSharpe | None) -> dict[str, Any] | None:
    if dsr is None:
        return None
    return {
        "dsr": f"{dsr.value:.6f}",
        "significant": dsr.significant,
        "trials": dsr.trials,
        "returns": dsr.returns,
        "sharpe_per_period": f"{dsr.sharpe:.6f}",
        "expected_max_sharpe": f"{dsr.benchmark:.6f}",
        "sharpe_variance": f"{dsr.variance:.6g}",
        "skew": f"{dsr.skew:.6f}",
        "kurtosis": f"{dsr.kurtosis:.6f}",
    }


def _fold_json(result: FoldResult, objective: str) -> dict[str, Any]:
    fold = result.fold
    return {
        "fold": fold.index,
        "in_sample": {**window_json(fold.train, result.span_ns.get("in_sample")), **trial_json(result.best)},
        "out_of_sample": None
        if fold.test is None
        else {**window_json(fold.test, result.span_ns.get("out_of_sample")), **trial_json(result.oos)},
        "trials": len(result.trials),
        "deflated_sharpe": _dsr_json(result.dsr),
        "warning": result.warning(objective),
    }


def summary_json(result: OptimizeResult) -> dict[str, Any]:
    """What ``optimize --json`` prints (and a saved run keeps as its summary)."""
    r = result.request
    trials = result.trials
    states = {state: sum(1 for t in trials if t.state == state) for state in ("complete", "undefined", "invalid")}
    folds = [_fold_json(f, r.objective) for f in result.folds]
    best = result.best
    last = result.folds[-1]
    walk = None
    if r.walk_forward:
        in_sample = [f.best.value for f in result.folds if f.best is not None and f.best.value is not None]
        out = [f.oos.value for f in result.folds if f.oos is not None and f.oos.value is not None]
        walk = {
            "folds": r.walk_forward,
            "scheme": "anchored: each fold optimises on every candle before its test window",
            "in_sample_mean_objective": _mean(in_sample),
            "out_of_sample_mean_objective": _mean(out),
            "out_of_sample_defined": len(out),
        }
    return {
        "strategy": r.strategy,
        "pair": result.pair,
        "data": str(r.data),
        "candles": result.candles,
        "objective": r.objective,
        "sampler": r.sampler,
        "seed": r.seed,
        "batch": result.batch,
        "searched": [p.describe() for p in result.space.ranges],
        "fixed": {k: v for k, v in _shown(result.space.fixed).items()},
        "trials": len(trials),
        "trial_states": states,
        "best": None if best is None else {"fold": best.fold, "trial": best.number, **trial_json(best)},
        "deflated_sharpe": _dsr_json(last.dsr),
        "walk_forward": walk,
        "folds": folds,
        "warnings": [w for w in (f.warning(r.objective) for f in result.folds) if w],
        "notes": list(result.notes),
    }


def _shown(values: Mapping[str, Any]) -> dict[str, str]:
    from engine.research.space import show_values

    return show_values(values)


def _short(text: str | None) -> str:
    """A metric for the text report: 4 decimal places."""
    return "-" if text is None else f"{float(text):.4f}"


def _span(window: Mapping[str, Any]) -> str:
    return f"{window['from'][:16].replace('T', ' ')}..{window['to'][:16].replace('T', ' ')}"


def _mean(values: Sequence[Decimal]) -> str | None:
    return None if not values else f"{fmean(float(v) for v in values):.4f}"


def render_optimize(result: OptimizeResult, summary: Mapping[str, Any], run_id: int | None) -> str:
    """The text report."""
    r = result.request
    s = summary
    states = s["trial_states"]
    rate = len(result.trials) / result.elapsed_s if result.elapsed_s > 0 else 0.0
    lines = [
        f"Optimised {r.strategy} on {result.pair} ({result.candles:,} candles of {r.data.name}): objective "
        f"{r.objective}, sampler {r.sampler}, seed {r.seed}"
        + (f" (saved as run {run_id})" if run_id is not None else ""),
        f"  searched      {', '.join(s['searched'])}"
        + (f"; fixed {', '.join(f'{k}={v}' for k, v in s['fixed'].items())}" if s["fixed"] else ""),
        f"  trials        {s['trials']} ({states['complete']} complete, {states['undefined']} with no {r.objective}, "
        f"{states['invalid']} refused by the strategy) in {result.elapsed_s:.1f} s ({rate:.2f} trials/s, "
        f"{r.workers} {r.backend} worker{'s' if r.workers != 1 else ''})",
    ]
    best = s["best"]
    if best is None:
        lines.append(f"  best          none: no trial had a defined {r.objective}")
    else:
        shown = " ".join(f"{k}={v}" for k, v in best["params"].items())
        m = best["metrics"]
        lines.append(
            f"  best          {shown}: {r.objective} {best['objective']} (return {_short(m['total_return'])}, max "
            f"drawdown {_short(m['max_drawdown'])}, {m['trade_count']} trades"
            + (f", fold {best['fold']} of {r.walk_forward})" if r.walk_forward else ")")
        )
    dsr = s["deflated_sharpe"]
    if dsr is not None:
        lines.append(
            f"  deflated Sharpe ratio {dsr['dsr']} over {dsr['trials']} trials (per-period Sharpe "
            f"{dsr['sharpe_per_period']} against an expected maximum of {dsr['expected_max_sharpe']})"
        )
    if s["walk_forward"]:
        lines.append(f"Walk-forward, {r.walk_forward} folds (anchored), {r.objective} in sample | out of sample:")
        for f in s["folds"]:
            ins, out = f["in_sample"], f["out_of_sample"]
            params = " ".join(f"{k}={v}" for k, v in (ins["params"] or {}).items()) or "-"
            lines.append(
                f"  fold {f['fold']}  {_span(ins)} {ins['objective'] or '-':>10} | {_span(out)} "
                f"{out['objective'] or '-':>10}  {params}"
            )
        w = s["walk_forward"]
        lines.append(
            f"  mean {r.objective}: in sample {w['in_sample_mean_objective']}, out of sample "
            f"{w['out_of_sample_mean_objective']}"
        )
    for warning in s["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def run_rows(
    result: OptimizeResult, summary: Mapping[str, Any], created_ts_ns: int, rerun_of: int | None
) -> tuple[NewRun, list[NewTrial]]:
    """The rows a finished run is saved as."""
    r = result.request
    best = result.best
    run = NewRun(
        created_ts_ns=created_ts_ns,
        strategy=r.strategy,
        data=str(r.data.resolve()),
        data_sha256=result.data_sha256,
        objective=r.objective,
        sampler=r.sampler,
        seed=r.seed,
        trials=len(result.trials),
        folds=r.walk_forward,
        args={**r.to_args(), "config_sha256": result.config_sha256, "optuna": result.optuna_version},
        best_params=None if best is None else best.params,
        best_value=None if best is None else best.value,
        best_metrics=None if best is None else best.metrics,
        summary=summary,
        elapsed_ms=round(result.elapsed_s * 1000),
        rerun_of=rerun_of,
    )
    trials = [NewTrial(t.number, t.fold, t.state, t.params, t.value, t.metrics) for t in result.trials]
    return run, trials
