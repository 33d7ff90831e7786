"""One trial: a backtest of one parameter set over a window of an already-loaded file, and its objective.

The backtest is ``trading-mcp backtest``'s own path, not a second simulator: the configuration is built the way
:func:`engine.runtime.cli_backtest.backtest_config` builds it (the caller passes that config with the strategy's
fixed parameters; each trial puts its own in), the candles of the window are replayed at full speed through
:class:`~engine.runtime.app.Engine` with ``RunOptions(durable_intents=False, record_every_candle=False)`` into an
in-memory store, and the metrics are the facade's ``performance()``, which ``backtest --json`` prints as
``metrics``. A window is a slice ``[start, stop)`` of the file's candles; the strategy warms up inside it (an EMA
of 200 candles trades from the 201st candle of the window on), exactly as a backtest of a file holding only those
candles would.

Objectives (maximised):

* ``sharpe`` and ``sortino``: the report's annualised ratios (:mod:`engine.portfolio.equity` states the
  convention: daily UTC closes, or the native interval under two days).
* ``return``: the report's ``total_return`` (end equity / start equity - 1).
* ``calmar``: annual return / max drawdown, where annual return = ``(1 + total_return) ** (365 days / span) - 1``
  compounded over the window's span (its first candle's open to its last candle's close) and max drawdown is the
  report's largest peak-to-trough fall as a fraction of the peak; 4 places, Decimal arithmetic.

An objective is undefined (``None``) where its metric is: no returns or no deviation (a run that never traded has
no Sharpe ratio), no drawdown for calmar. A trial with an undefined objective is kept and shown, but never chosen
as the best (Optuna is told it failed).

Besides the metrics, a trial keeps what the deflated Sharpe ratio needs (:class:`ReturnStats`: the per-period
Sharpe ratio and the skew and kurtosis of the returns behind the reported ratios) and what the replay fed the
engine (the first candle's open, the last candle's close, how many candles the engine processed): the walk-forward
tests check from these that no trial of a fold saw a candle of its test window.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np

from engine.domain.instrument import Instrument
from engine.domain.market_data import Candle
from engine.exchanges.replay import ReplaySource
from engine.portfolio.equity import CTX, SECONDS_PER_YEAR, return_series, round_ratio
from engine.research.errors import OptimizeError
from engine.research.space import show_values
from engine.runtime.app import Engine, RunOptions, replay_file
from engine.runtime.backtest_run import BACKTEST_YIELD_S, window_candles
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade
from engine.runtime.sources import ReplayMarketSource
from engine.strategies import ParamValue

__all__ = [
    "OBJECTIVES",
    "BacktestSetup",
    "DataSpec",
    "ReturnStats",
    "TrialResult",
    "TrialTask",
    "Window",
    "calmar_ratio",
    "evaluate",
    "load_candles",
    "window_replay",
]

OBJECTIVES = ("sharpe", "sortino", "calmar", "return")
TrialState = Literal["complete", "undefined", "invalid"]
_NS_PER_YEAR = Decimal(SECONDS_PER_YEAR * 1_000_000_000)


@dataclass(frozen=True, slots=True)
class DataSpec:
    """The file a search runs over, as ``backtest`` reads it: the path, the pair it is traded as, the interval."""

    path: Path
    pair: str
    interval_s: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    """A window of the file: its candles opening at or after ``start_ns`` and closing at or before ``end_ns``."""


@dataclass(frozen=True, slots=True)
class Window:
    """Candles ``[start, stop)`` of the loaded file (indices)."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class BacktestSetup:
    """What every trial of a search shares: the data, the backtest's configuration (as a mapping, with the
    strategy's fixed parameters), the objective, and the instruments the whole file implies (so that a pair no
    catalogue knows is inferred once, from the file, not differently per window)."""

    data: DataSpec
    config: Mapping[str, Any]
    objective: str
    instruments: Mapping[str, Instrument] | None = None

    def config_for(self, params: Mapping[str, ParamValue]) -> Config:
        """The backtest's configuration with the trial's parameters (what ``backtest --param`` would give)."""
        base = dict(self.config)
        strategy = {**base["strategies"][0], "params": dict(params)}
        return config_from_mapping({**base, "strategies": [strategy]})


@dataclass(frozen=True, slots=True)
class TrialTask:
    """One backtest to run: trial ``number`` of ``fold`` (0 without walk-forward), its parameters, its window."""

    number: int
    fold: int
    params: Mapping[str, ParamValue]
    window: Window


@dataclass(frozen=True, slots=True)
class ReturnStats:
    """The returns behind the reported ratios (see :mod:`engine.portfolio.equity`), for the deflated Sharpe ratio.

    ``sharpe``: mean / sample standard deviation, per period (not annualised); ``None`` when undefined.
    ``skew`` and ``kurtosis``: the third and fourth standardised central moments (kurtosis 3 for a normal
    distribution, not the excess).
    """

    count: int = 0
    sharpe: float | None = None
    skew: float | None = None
    kurtosis: float | None = None

    @classmethod
    def of(cls, returns: Sequence[Decimal]) -> "ReturnStats":
        r = np.array([float(x) for x in returns], dtype=np.float64)
        if r.size < 2:
            return cls(int(r.size))
        centred = r - r.mean()
        m2 = float(np.mean(centred**2))
        std = float(np.std(r, ddof=1))
        if m2 <= 0.0 or std <= 0.0:
            return cls(int(r.size))
        return cls(
            int(r.size),
            float(r.mean()) / std,
            float(np.mean(centred**3)) / m2**1.5,
            float(np.mean(centred**4)) / m2**2,
        )


@dataclass(frozen=True, slots=True)
class TrialResult:
    """What one trial gave.

    Attributes:
        state: ``complete``; ``undefined`` (ran, but the objective is undefined); ``invalid`` (the strategy refused
            the combination, ``note`` says why; nothing ran).
        value: the objective (None unless complete).
        metrics: the backtest's metrics (as ``backtest --json`` prints them) plus ``annual_return`` and
            ``calmar``.
        seen_first_open_ns, seen_last_close_ns, candles: the first candle's open and the last candle's close that
            the replay fed the engine, and how many candles the engine processed (0 when nothing ran).
    """

    number: int
    fold: int
    params: dict[str, str]
    state: TrialState
    value: Decimal | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    returns: ReturnStats = ReturnStats()
    seen_first_open_ns: int = 0
    seen_last_close_ns: int = 0
    candles: int = 0
    note: str = ""


def load_candles(data: DataSpec) -> Sequence[Candle]:
    """The file's candles, read as ``backtest`` reads it (a trades file becomes one-minute candles or
    ``interval_s`` ones).

    Raises:
        OptimizeError: the file is missing or holds no candles.
        ReplayError: the file is not a supported format (its own message).
    """
    if not data.path.is_file():
        raise OptimizeError(f"data file {data.path} does not exist or is not a file")
    events = replay_file(data.path, data.pair, data.interval_s).load().events
    if not events or not all(isinstance(e, Candle) for e in (events[0], events[-1])):
        raise OptimizeError(f"data file {data.path} holds no candles")
    if data.start_ns is not None or data.end_ns is not None:
        inside = window_candles(events, data.start_ns, data.end_ns)
        if not inside:
            raise OptimizeError(f"no candle of {data.path.name} lies inside the window asked for")
        return inside
    return events  # type: ignore[return-value]  # a candle file's events, or a trades file's candles


def window_replay(candles: Sequence[Candle], window: Window, name: str) -> ReplaySource:
    """The window's candles as a replay source (made once per window and reused by every trial on it)."""
    return ReplaySource.from_events(candles[window.start : window.stop], name=name)


def calmar_ratio(total_return: Decimal | None, max_drawdown: Decimal | None, span_ns: int) -> tuple[Decimal, ...]:
    """``(annual_return, calmar)`` (see the module docstring); ``()`` when either is undefined."""
    if total_return is None or span_ns <= 0:
        return ()
    with localcontext(CTX):
        growth = Decimal(1) + total_return
        if growth <= 0:
            return ()
        try:
            annual = growth ** (_NS_PER_YEAR / Decimal(span_ns)) - Decimal(1)
        except ArithmeticError:
            return ()
        if max_drawdown is None or max_drawdown <= 0:
            return (round_ratio(annual),)
        return round_ratio(annual), round_ratio(annual / max_drawdown)


def evaluate(setup: BacktestSetup, replay: ReplaySource, task: TrialTask) -> TrialResult:
    """Run the trial's backtest over ``replay`` (the task's window) and score it.

    A combination the strategy refuses gives an ``invalid`` result (nothing runs); a configuration error of any
    other kind propagates (the caller validated the configuration before the search).
    """
    from engine.strategies import ParamError, strategy_class

    shown = show_values(task.params)
    kind = str(setup.config["strategies"][0]["kind"])
    try:
        strategy_class(kind).validate(task.params, base=None)
    except ParamError as exc:
        return TrialResult(task.number, task.fold, shown, "invalid", note=str(exc))
    config = setup.config_for(task.params)
    source = ReplayMarketSource(replay, None, replay.name, yield_interval_s=BACKTEST_YIELD_S)
    options = RunOptions(durable_intents=False, record_every_candle=False, id_prefix="bt")
    engine = Engine.from_config(config, None, source=source, options=options, instruments=setup.instruments)

    async def run() -> dict[str, Any]:
        async with engine.serve():
            await engine.done.wait()
        return (await EngineFacade(engine).performance()).metrics

    metrics = anyio.run(run)
    first = replay.events[0]
    assert isinstance(first, Candle)
    span = replay.last_ts_ns - first.ts_ns
    total_return = _dec(metrics.get("total_return"))
    figures = calmar_ratio(total_return, _dec(metrics.get("max_drawdown")), span)
    metrics["annual_return"] = format(figures[0], "f") if figures else None
    metrics["calmar"] = format(figures[1], "f") if len(figures) > 1 else None
    start_equity = _dec(metrics.get("start_equity"))
    series = return_series(engine.equity_curve.points(), start_equity)
    stats = ReturnStats.of(series.returns if series is not None else ())
    value = _dec(metrics.get({"return": "total_return"}.get(setup.objective, setup.objective)))
    return TrialResult(
        task.number,
        task.fold,
        shown,
        "complete" if value is not None else "undefined",
        value,
        metrics,
        stats,
        first.ts_ns,
        replay.last_ts_ns,
        engine.state.cursor,
    )


def _dec(text: object) -> Decimal | None:
    return None if text is None else Decimal(str(text))
