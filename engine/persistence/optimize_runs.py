"""Saved ``trading-mcp optimize`` runs: the ``optimize_runs`` and ``optimize_trials`` tables (migration m007).

A run is written whole, in one transaction, once it has finished (:func:`save_run`): a run interrupted before
that leaves no row at all, never half a run. Rows hold JSON as the codec encodes it (Decimals as strings, no
floats), the objective value as Decimal text.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.persistence.codec import from_json, to_json
from engine.persistence.store import Store

__all__ = ["NewRun", "NewTrial", "SavedRun", "SavedTrial", "list_runs", "load_run", "load_trials", "save_run"]


@dataclass(frozen=True, slots=True)
class NewTrial:
    """One trial of a run, as saved."""

    number: int
    fold: int
    state: str
    params: Mapping[str, str]
    value: Decimal | None
    metrics: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NewRun:
    """A finished run, as saved (``args``: its search arguments, enough to run it again)."""

    created_ts_ns: int
    strategy: str
    data: str
    data_sha256: str
    objective: str
    sampler: str
    seed: int
    trials: int
    folds: int
    args: Mapping[str, Any]
    best_params: Mapping[str, str] | None
    best_value: Decimal | None
    best_metrics: Mapping[str, Any] | None
    summary: Mapping[str, Any]
    elapsed_ms: int
    rerun_of: int | None = None


@dataclass(frozen=True, slots=True)
class SavedRun(NewRun):
    """A run read back, with its id."""

    id: int = 0


@dataclass(frozen=True, slots=True)
class SavedTrial(NewTrial):
    """A trial read back."""


def save_run(store: Store, run: NewRun, trials: Sequence[NewTrial]) -> int:
    """Write ``run`` and its ``trials`` in one transaction; return the run's id."""
    with store.atomic():
        cursor = store.db.execute(
            "INSERT INTO optimize_runs (created_ts_ns, strategy, data, data_sha256, objective, sampler, seed, trials,"
            " folds, args, best_params, best_value, best_metrics, summary, elapsed_ms, rerun_of)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.created_ts_ns,
                run.strategy,
                run.data,
                run.data_sha256,
                run.objective,
                run.sampler,
                run.seed,
                run.trials,
                run.folds,
                to_json(run.args),
                None if run.best_params is None else to_json(run.best_params),
                None if run.best_value is None else format(run.best_value, "f"),
                None if run.best_metrics is None else to_json(run.best_metrics),
                to_json(run.summary),
                run.elapsed_ms,
                run.rerun_of,
            ),
        )
        run_id = cursor.lastrowid
        assert run_id is not None
        store.db.conn.executemany(
            "INSERT INTO optimize_trials (run_id, number, fold, state, params, value, metrics)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    t.number,
                    t.fold,
                    t.state,
                    to_json(t.params),
                    None if t.value is None else format(t.value, "f"),
                    to_json(t.metrics),
                )
                for t in trials
            ],
        )
    return int(run_id)


_RUN_COLUMNS = (
    "id, created_ts_ns, strategy, data, data_sha256, objective, sampler, seed, trials, folds, args, best_params,"
    " best_value, best_metrics, summary, elapsed_ms, rerun_of"
)


def _run(row: Sequence[Any]) -> SavedRun:
    (id_, created, strategy, data, digest, objective, sampler, seed, trials, folds, args, bp, bv, bm, summary) = row[
        :15
    ]
    return SavedRun(
        created_ts_ns=created,
        strategy=strategy,
        data=data,
        data_sha256=digest,
        objective=objective,
        sampler=sampler,
        seed=seed,
        trials=trials,
        folds=folds,
        args=from_json(args),
        best_params=None if bp is None else from_json(bp),
        best_value=None if bv is None else Decimal(bv),
        best_metrics=None if bm is None else from_json(bm),
        summary=from_json(summary),
        elapsed_ms=row[15],
        rerun_of=row[16],
        id=id_,
    )


def list_runs(store: Store) -> list[SavedRun]:
    """Every saved run, oldest first."""
    return [_run(row) for row in store.db.execute(f"SELECT {_RUN_COLUMNS} FROM optimize_runs ORDER BY id")]


def load_run(store: Store, run_id: int) -> SavedRun | None:
    """The saved run ``run_id``, or None."""
    row = store.db.execute(f"SELECT {_RUN_COLUMNS} FROM optimize_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _run(row)


def load_trials(store: Store, run_id: int) -> list[SavedTrial]:
    """The trials of run ``run_id``, in trial order."""
    rows = store.db.execute(
        "SELECT number, fold, state, params, value, metrics FROM optimize_trials WHERE run_id = ? ORDER BY number",
        (run_id,),
    )
    return [
        SavedTrial(number, fold, state, from_json(params), _opt_dec(value), from_json(metrics))
        for number, fold, state, params, value, metrics in rows
    ]


def _opt_dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
