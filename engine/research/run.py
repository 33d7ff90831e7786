"""One optimisation run, from its arguments (:class:`OptimizeRequest`) to its result (:class:`OptimizeResult`).

Everything a user can get wrong is checked before any trial runs, each with a one-sentence
:class:`~engine.research.errors.OptimizeError` (or the backtest's own error for the data and configuration). What a
result depends on is the request's *search* fields (data, pair, interval, strategy, ranges, trials, objective,
walk-forward, sampler, seed, batch, config, risk limits), never the *execution* fields (workers, backend, address):
a saved run is rerun from its search fields, on any machine and with any number of workers.
"""

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.domain.market_data import Candle
from engine.exchanges.catalog import default_instruments
from engine.research.errors import OptimizeError
from engine.research.objective import (
    OBJECTIVES,
    BacktestSetup,
    DataSpec,
    TrialResult,
    Window,
    load_candles,
    window_replay,
)
from engine.research.runners import InProcessRunner, PoolRunner, TrialRunner
from engine.research.search import SAMPLERS, default_batch
from engine.research.space import SearchSpace, parse_space
from engine.research.walk_forward import FoldResult, Progress, SearchPlan, run_folds, split_folds
from engine.runtime.app import Engine
from engine.runtime.backtest_run import RISK_LIMIT_CHOICES, BacktestSpec, backtest_config
from engine.runtime.config import config_from_mapping, load_config
from engine.runtime.sources import ReplayMarketSource
from engine.strategies import ParamError, strategy_class

__all__ = [
    "BACKENDS",
    "EXECUTION_FIELDS",
    "OptimizeRequest",
    "OptimizeResult",
    "file_digest",
    "make_runner",
    "optimize",
]

BACKENDS = ("local", "ray")
EXECUTION_FIELDS = frozenset({"workers", "backend", "address"})
"""Request fields that decide where trials run, never what they give."""


@dataclass(frozen=True, slots=True)
class OptimizeRequest:
    """An optimisation's arguments, as ``trading-mcp optimize`` takes them (``interval`` in minutes)."""

    data: Path
    strategy: str
    params: tuple[str, ...]
    pair: str = "BTC/USD"
    interval: int | None = None
    trials: int = 200
    objective: str = "sharpe"
    walk_forward: int = 0
    sampler: str = "tpe"
    seed: int = 1
    batch: int | None = None
    config: Path | None = None
    risk_limits: str = "none"
    base: Mapping[str, Any] | None = None
    """The configuration the trials start from when it is not a file (the engine's own, for the MCP tool), as JSON;
    None: ``config`` (or the defaults)."""
    start_ns: int | None = None
    end_ns: int | None = None
    """The window: the file's candles opening at or after ``start_ns`` and closing at or before ``end_ns``."""
    workers: int = 1
    backend: str = "local"
    address: str | None = None

    def to_args(self) -> dict[str, Any]:
        """The search fields as JSON (paths absolute): what a saved run keeps to be rerun."""
        args = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in EXECUTION_FIELDS}
        args["data"] = str(self.data.resolve())
        args["config"] = None if self.config is None else str(self.config.resolve())
        args["params"] = list(self.params)
        args["base"] = None if self.base is None else dict(self.base)
        return args

    @classmethod
    def from_args(cls, args: Mapping[str, Any], **execution: Any) -> "OptimizeRequest":
        """A request from saved search fields (see :meth:`to_args`) and the execution fields given now."""
        known = {f.name for f in fields(cls)} - EXECUTION_FIELDS
        values = {k: v for k, v in args.items() if k in known}
        values["data"] = Path(values["data"])
        values["config"] = None if values.get("config") is None else Path(values["config"])
        values["params"] = tuple(values.get("params", ()))
        return cls(**values, **execution)


@dataclass(slots=True)
class OptimizeResult:
    """What a run found: each fold's trials, choice, out-of-sample test and deflated Sharpe ratio.

    ``best`` is the last fold's choice (with walk-forward: the one optimised on the most history, the one to trade
    next), with its parameters in ``best_params``.
    """

    request: OptimizeRequest
    pair: str
    batch: int
    space: SearchSpace
    folds: list[FoldResult]
    candles: int
    elapsed_s: float
    data_sha256: str
    config_sha256: str | None
    optuna_version: str
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> TrialResult | None:
        return self.folds[-1].best

    @property
    def trials(self) -> list[TrialResult]:
        return [trial for fold in self.folds for trial in fold.trials]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(request: OptimizeRequest) -> tuple[SearchSpace, int]:
    """The search space and the batch size, once every argument is known good."""
    r = request
    for name in ("trials", "workers", "batch"):
        value = getattr(r, name)
        if value is not None and value < 1:
            raise OptimizeError(f"--{name} {value}: give a number of 1 or more")
    if r.interval is not None and r.interval < 1:
        raise OptimizeError(f"--interval {r.interval}: give a number of minutes of 1 or more")
    choices: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("objective", r.objective, OBJECTIVES),
        ("sampler", r.sampler, SAMPLERS),
        ("backend", r.backend, BACKENDS),
        ("risk-limits", r.risk_limits, RISK_LIMIT_CHOICES),
    )
    for name, value, allowed in choices:
        if value not in allowed:
            raise OptimizeError(f"--{name} {value!r} is not one of {', '.join(allowed)}")
    if r.address is not None and r.backend != "ray":
        raise OptimizeError("--address names a Ray cluster: it needs --backend ray")
    try:
        kind = strategy_class(r.strategy)
    except ParamError as exc:
        raise OptimizeError(str(exc)) from None
    space = parse_space(kind, r.params)
    if r.sampler == "grid":
        space.grid()  # refuses a grid too large to list, before anything runs
    return space, r.batch or default_batch(r.workers)


def _setup(request: OptimizeRequest, candles: Sequence[Candle]) -> tuple[BacktestSetup, str, list[str]]:
    """The trials' shared backtest setup, built as ``backtest`` builds its configuration, and the notes a backtest
    of the whole file would print (a pair inferred from the prices, a pair the data does not carry), with the
    canonical name of the pair."""
    base = load_config(request.config) if request.base is None else config_from_mapping(dict(request.base))
    spec = BacktestSpec(
        request.data,
        request.strategy,
        {},
        request.pair,
        request.interval,
        "config" if request.risk_limits == "config" else "none",
    )
    config = backtest_config(base, spec)
    whole = window_replay(candles, Window(0, len(candles)), request.data.name)
    replay = ReplayMarketSource(whole, None, request.data.name)
    probe = Engine.from_config(config, None, source=replay)
    pair = config.strategies[0].pair
    instruments = None if pair in default_instruments() else dict(probe.instruments)
    return (
        BacktestSetup(_data_spec(request), config.model_dump(), request.objective, instruments),
        pair,
        list(probe.notes),
    )


def _data_spec(request: OptimizeRequest) -> DataSpec:
    interval_s = request.interval * 60 if request.interval else None
    return DataSpec(request.data, request.pair, interval_s, request.start_ns, request.end_ns)


def make_runner(request: OptimizeRequest, setup: BacktestSetup, candles: Sequence[Candle]) -> TrialRunner:
    """Where the trials run: this process (1 local worker), a process pool, or Ray."""
    if request.backend == "ray":
        from engine.research.ray_backend import RayRunner

        return RayRunner(setup, candles, request.workers, request.address)
    if request.workers == 1:
        return InProcessRunner(setup, candles)
    return PoolRunner(setup, request.workers)


def optimize(request: OptimizeRequest, on_progress: Callable[[Progress], None] = lambda _p: None) -> OptimizeResult:
    """Run an optimisation (see :mod:`engine.research.walk_forward`) and return what it found; nothing is saved.

    Raises:
        OptimizeError, BacktestError, ConfigError, EngineError, ReplayError: a bad argument (nothing ran).
        KeyboardInterrupt: from ``on_progress`` or Ctrl-C; the workers are ended first.
    """
    import optuna

    started = time.perf_counter()
    space, batch = _check(request)
    if not request.data.is_file():
        raise OptimizeError(f"data file {request.data} does not exist or is not a file")
    candles = load_candles(_data_spec(request))
    folds = split_folds(len(candles), request.walk_forward)
    setup, pair, notes = _setup(request, candles)
    plan = SearchPlan(space, request.sampler, request.seed, request.trials, batch)
    runner = make_runner(request, setup, candles)
    try:
        results = run_folds(candles, folds, plan, runner, on_progress)
    finally:
        runner.close()
    return OptimizeResult(
        request,
        pair,
        batch,
        space,
        results,
        len(candles),
        time.perf_counter() - started,
        file_digest(request.data),
        None if request.config is None else file_digest(request.config),
        optuna.__version__,
        notes,
    )
