"""A tuning preview's what-if: the current and the proposed parameters of a strategy, each backtested over the
recent candles the engine holds for its pair (a slot keeps up to 2,500), side by side.

Both backtests are :func:`engine.runtime.backtest_run.candles_backtest` (``trading-mcp backtest``'s run, over
candles in memory instead of a file): the engine's configuration, that one strategy, a simulated account of its
own from the same start, no risk limits; they run one after the other in a killable worker process
(:func:`engine.runtime.worker_process.run_in_worker`) within :data:`WHAT_IF_TIMEOUT_S`, never on the engine's
event loop, and read nothing of the live engine beyond the candles, the configuration and the instruments handed
to them. Fewer candles than the slower of the two parameter sets needs to warm up plus :data:`WHAT_IF_MARGIN` give
no what-if (:func:`too_few_candles` says why).
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from engine.domain.instrument import Instrument
from engine.domain.market_data import Candle
from engine.errors import InvalidRequest
from engine.exchanges.replay.errors import ReplayError
from engine.runtime.app import EngineError
from engine.runtime.backtest_run import BacktestSpec, candles_backtest
from engine.runtime.config import Config, ConfigError
from engine.runtime.views import BacktestView, WhatIfSideView, WhatIfView
from engine.runtime.worker_process import run_in_worker
from engine.strategies import ParamValue

__all__ = ["RECENT_NAME", "WHAT_IF_MARGIN", "WHAT_IF_TIMEOUT_S", "too_few_candles", "what_if_in_worker"]

WHAT_IF_TIMEOUT_S = 60.0
"""How long both backtests together may run before the worker is killed."""
WHAT_IF_MARGIN = 50
"""Candles beyond the warm-up a what-if needs, so that the strategy has had a chance to trade at all."""
RECENT_NAME = "recent candles"
"""What the backtests' data is called (no file: the engine's own candles)."""
_HUNDRED = Decimal(100)


def too_few_candles(held: int, warmup: int) -> str | None:
    """Why ``held`` candles are too few for a what-if of strategies warming up on ``warmup`` (None: enough)."""
    needed = warmup + WHAT_IF_MARGIN
    if held >= needed:
        return None
    return (
        f"no what-if: the engine holds {held} recent candles for this pair, and a fair comparison needs at least "
        f"{needed} (the warm-up of {warmup} candles plus {WHAT_IF_MARGIN})"
    )


def _percent(text: object) -> Decimal | None:
    return None if text is None else Decimal(str(text)) * _HUNDRED


def _side(view: BacktestView, params: Mapping[str, str]) -> WhatIfSideView:
    m = view.metrics
    return WhatIfSideView(
        params=dict(params),
        trades=view.trades,
        net_pnl=Decimal(str(m["end_equity"])) - Decimal(str(m["start_equity"])),
        return_pct=_percent(m.get("total_return")),
        max_drawdown_pct=_percent(m.get("max_drawdown")),
        fees=Decimal(str(m.get("fees_paid") or 0)),
        fills=view.fills,
    )


def both_backtests(
    base: Config,
    kind: str,
    pair: str,
    candles: Sequence[Candle],
    sides: Sequence[Mapping[str, ParamValue]],
    instruments: Mapping[str, Instrument] | None,
) -> list[BacktestView]:
    """Each parameter set of ``sides`` backtested over ``candles`` (the worker process runs this); a refusal of the
    run comes back as :class:`InvalidRequest`."""
    try:
        return [
            candles_backtest(base, BacktestSpec(Path(RECENT_NAME), kind, dict(params), pair), candles, instruments)
            for params in sides
        ]
    except (ConfigError, EngineError, ReplayError) as exc:
        raise InvalidRequest(str(exc).rstrip(".")) from None


async def what_if_in_worker(
    base: Config,
    *,
    kind: str,
    pair: str,
    candles: Sequence[Candle],
    current: Mapping[str, ParamValue],
    proposed: Mapping[str, ParamValue],
    shown: tuple[Mapping[str, str], Mapping[str, str]],
    instruments: Mapping[str, Instrument] | None = None,
    timeout_s: float = WHAT_IF_TIMEOUT_S,
) -> WhatIfView:
    """Backtest ``current`` and ``proposed`` over ``candles`` in a worker process (see the module docstring);
    ``shown`` are both parameter sets as text.

    Raises:
        InvalidRequest: the run took longer than ``timeout_s`` (the worker was killed).
        NotAllowed: another what-if is running.
    """
    now, then = await run_in_worker(
        both_backtests,
        base,
        kind,
        pair,
        list(candles),
        [dict(current), dict(proposed)],
        None if instruments is None else dict(instruments),
        kind="what-if",
        timeout_s=timeout_s,
        too_long="preview again later",
    )
    return WhatIfView(
        pair=now.pair,
        quote_currency=now.quote_currency,
        window=now.window,
        current=_side(now, shown[0]),
        proposed=_side(then, shown[1]),
        notes=list(now.notes),
    )
