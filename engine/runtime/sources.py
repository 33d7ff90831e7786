"""Market-data sources for the runtime: a replayed file (paced by ``--speed``) or a live feed.

A source numbers its events, so a run can resume after a restart at the first event it had not processed.
"""

import hashlib
from collections.abc import AsyncGenerator, Iterator, Sequence
from itertools import islice
from pathlib import Path
from time import perf_counter
from typing import Literal, Protocol

import anyio

from engine.domain.market_data import Candle, MarketEvent
from engine.exchanges.replay import Pacer, ReplaySource

__all__ = ["MarketSource", "ReplayMarketSource", "replay_identity", "shipped_sample"]

# Yield to the event loop at least this often (seconds) when replaying at full speed, so that the MCP server stays
# responsive, but no more: each yield may hand the GIL to the writer thread for a whole switch interval.
CHECKPOINT_INTERVAL_S = 0.002
BATCH = 32
AUTO_CANDLE_S = 0.1  # --speed auto: one candle every 0.1 s of wall time, whatever the file's interval
IDENTITY_PREFIX_BYTES = 1 << 20


def replay_identity(files: Sequence[tuple[Path, str]]) -> str:
    """``replay <file>[:<pair>]+... #<digest>``: the files' names and pairs, and a digest of the first MiB of
    each (the same history under another path is the same source; a newer download of it that only adds rows at
    the end still is; another file of the same name is not).

    Raises:
        OSError: a file cannot be read.
    """
    digest = hashlib.sha256()
    for path, _pair in files:
        with path.open("rb") as handle:
            digest.update(handle.read(IDENTITY_PREFIX_BYTES))
    names = "+".join(f"{path.name}:{pair}" for path, pair in files) if len(files) > 1 else files[0][0].name
    return f"replay {names} #{digest.hexdigest()[:12]}"


def shipped_sample() -> Path:
    """The Kraken one-minute OHLC capture that ships with the package."""
    return Path(__file__).resolve().parent.parent / "data" / "kraken_xbtusdt_1m_ohlc.json"


class MarketSource(Protocol):
    """Where market events come from."""

    @property
    def description(self) -> str: ...

    @property
    def identity(self) -> str:
        """What the data is, without how it is paced: a state file follows one (its replay position belongs to
        it), and a run on another is refused."""
        ...

    @property
    def total(self) -> int | None:
        """How many events there are (None for an endless live feed)."""
        ...

    @property
    def replayable(self) -> bool:
        """True when past events can be read again (to warm strategies up after a restart)."""
        ...

    def history(self, stop: int) -> Iterator[MarketEvent]:
        """Events ``[0, stop)`` again, unpaced (only for replayable sources)."""
        ...

    def stream(self, start: int) -> AsyncGenerator[Sequence[MarketEvent]]:
        """Events from index ``start`` on, paced, in batches (a live feed yields each event as it comes)."""
        ...


class ReplayMarketSource:
    """A file replayed at a chosen speed (None = as fast as possible)."""

    def __init__(
        self,
        replay: ReplaySource,
        speed: float | Literal["auto"] | None,
        label: str,
        *,
        yield_interval_s: float = CHECKPOINT_INTERVAL_S,
        identity: str | None = None,
    ) -> None:
        self.replay = replay
        self._speed = speed
        self.label = label
        self.yield_interval_s = yield_interval_s
        self._identity = identity or f"replay {label}"

    @property
    def speed(self) -> float | None:
        """The pace: a multiple of market time, or None for as fast as possible (``auto`` resolved from the file's
        candle interval when first asked: one candle every :data:`AUTO_CANDLE_S` seconds)."""
        if self._speed == "auto":
            first = next(self.replay.iter_from(0), None)
            interval = first.interval_s if isinstance(first, Candle) else 60
            self._speed = interval / AUTO_CANDLE_S
        return self._speed

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def description(self) -> str:
        pace = "max" if self.speed is None else f"x{self.speed:g}"
        return f"replay {self.label} ({len(self.replay)} events, speed {pace})"

    @property
    def total(self) -> int:
        return len(self.replay)

    @property
    def replayable(self) -> bool:
        return True

    def history(self, stop: int) -> Iterator[MarketEvent]:
        for index, event in enumerate(self.replay.iter_from(0)):
            if index >= stop:
                return
            yield event

    async def stream(self, start: int) -> AsyncGenerator[Sequence[MarketEvent]]:
        if self.speed is None:
            # As fast as possible: hand out batches, and let the event loop run between them once per interval.
            events = self.replay.iter_from(start)
            next_yield = perf_counter() + self.yield_interval_s
            while batch := list(islice(events, BATCH)):
                yield batch
                if perf_counter() >= next_yield:
                    await anyio.lowlevel.checkpoint()
                    next_yield = perf_counter() + self.yield_interval_s
            return
        pacer = Pacer(self.speed)
        previous: int | None = None
        for event in self.replay.iter_from(start):
            if previous is not None:
                delay = pacer.delay(previous, event.ts_ns)
                if delay > 0:
                    await anyio.sleep(delay)
            previous = event.ts_ns
            yield (event,)
