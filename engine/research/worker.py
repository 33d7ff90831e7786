"""What a worker process keeps between trials and how it runs one.

A worker loads the file once (:func:`init_worker`, a process pool's initializer, or the first Ray task a process
runs) and keeps the replay source of the last two windows it ran on, so that the trials of a fold, which share
their window, share the candles too; a trial then costs only its backtest.
"""

import signal
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.domain.market_data import Candle
from engine.exchanges.replay import ReplaySource
from engine.research.objective import (
    BacktestSetup,
    TrialResult,
    TrialTask,
    Window,
    evaluate,
    load_candles,
    window_replay,
)

__all__ = ["init_worker", "loaded_key", "release_worker", "run_trial"]

KEEP_WINDOWS = 2


@dataclass
class _Loaded:
    key: str
    setup: BacktestSetup
    candles: Sequence[Candle]
    windows: OrderedDict[Window, ReplaySource] = field(default_factory=OrderedDict)

    def replay(self, window: Window) -> ReplaySource:
        found = self.windows.get(window)
        if found is None:
            found = window_replay(self.candles, window, self.setup.data.path.name)
            self.windows[window] = found
            while len(self.windows) > KEEP_WINDOWS:
                self.windows.popitem(last=False)
        else:
            self.windows.move_to_end(window)
        return found


_LOADED: _Loaded | None = None


def init_worker(
    setup: BacktestSetup, candles: Sequence[Candle] | None = None, *, key: str = "", ignore_sigint: bool = False
) -> None:
    """Make this process ready to run trials of ``setup``: load its file (unless ``candles`` are given).

    ``ignore_sigint``: a pool's workers leave Ctrl-C to the parent, which stops the search and ends them.
    """
    global _LOADED
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _LOADED = _Loaded(key, setup, candles if candles is not None else load_candles(setup.data))


def release_worker() -> None:
    """Let go of the loaded data (a search in this process is over)."""
    global _LOADED
    _LOADED = None


def loaded_key() -> str | None:
    """The key the loaded data was given (None when nothing is loaded): a Ray worker reloads on a new one."""
    return None if _LOADED is None else _LOADED.key


def run_trial(task: TrialTask) -> TrialResult:
    """Run one trial on the loaded data (:func:`init_worker` first)."""
    if _LOADED is None:
        raise RuntimeError("run_trial before init_worker")
    return evaluate(_LOADED.setup, _LOADED.replay(task.window), task)
