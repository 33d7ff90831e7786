"""Higher-interval candles out of a base feed of closed candles (5 min, 1 h out of 1 min), for strategies that
declare several timeframes (:attr:`engine.strategies.base.Strategy.timeframes`). Sans-I/O and pure: closed base
candles in, closed higher candles out.

Periods are aligned to the unix epoch, as Kraken's OHLC intervals are (1 h candles open on the hour, 1 d ones at
00:00 UTC, 1 w ones on Thursdays like Kraken's 10080). A higher candle is built as a candle of trades is
(:class:`~engine.market.candles_from_trades.CandleBuilder`, fed whole bars): open of its first base candle, close of
its last, the extremes, the sums of volume and trade counts. It is handed out only once closed:

* when the base candle that ends its period has closed (that candle's close time is the period's end), or
* after a gap, when a later base candle shows that the period is over: it comes out just before that base candle.

Gaps and partial periods:

* a period with some base candles missing is built from those present (in Kraken's data a missing candle is one
  without trades, so the result is Kraken's own candle of that interval);
* a whole period without any base candle gets Kraken's filler (open = high = low = close = the previous close,
  volume 0) once a later base candle shows it is over;
* the period in which the feed starts, when its first base candle is not at the period's start, is never handed
  out: its open and volume would miss what happened before the feed began. The first higher candle is the first
  period the feed covers from its start (a feed starting at 10:17 gives its first 1 h candle for 11:00-12:00).

Live trading, a replay, a restart's warm-up and a retune's re-warm all go through this class, so each sees the same
higher candles (a re-warm on a slot's recent base candles may begin one period later, by the rule above).
"""

from collections.abc import Iterable, Sequence

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.market.candles_from_trades import BuilderState, CandleBuilder

__all__ = ["HigherCandles", "TimeframeError", "check_timeframes", "describe_interval"]


class TimeframeError(ValueError):
    """A declared timeframe the base candles cannot build (not a whole multiple of the base interval)."""


def describe_interval(seconds: int) -> str:
    """``3600`` -> ``1 h``, ``300`` -> ``5 min``, ``90`` -> ``90 s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def check_timeframes(base_s: int, timeframes: Iterable[int], who: str = "") -> None:
    """Refuse a timeframe that is not a positive whole multiple of ``base_s`` (the base itself is allowed: its
    higher candle is the base candle).

    Raises:
        TimeframeError: naming the timeframe, the base interval and ``who`` asked for it.
    """
    prefix = f"{who}: " if who else ""
    for interval in timeframes:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
            raise TimeframeError(f"{prefix}a timeframe must be a positive whole number of seconds, not {interval!r}")
        if interval % base_s:
            raise TimeframeError(
                f"{prefix}the {describe_interval(interval)} timeframe cannot be built from "
                f"{describe_interval(base_s)} candles ({interval} s is not a multiple of {base_s} s); use a "
                f"multiple of {describe_interval(base_s)} or base candles that divide it"
            )


class HigherCandles:
    """Closed candles of several higher intervals, from one pair's closed base candles in time order.

    The base interval is the first candle's; each interval must be a multiple of it (:func:`check_timeframes`).

    Raises (from :meth:`add`):
        TimeframeError: a timeframe the base candles cannot build, or a base candle of another interval.
        engine.market.candles_from_trades.TradeOrderError: a base candle older than one already taken.
    """

    __slots__ = ("_base_s", "_builders", "_from_ns", "_intervals", "_pair")

    def __init__(self, pair: str, intervals: Sequence[int]) -> None:
        self._pair = pair
        self._intervals = tuple(sorted(set(intervals)))
        self._base_s: int | None = None
        self._builders: list[CandleBuilder] = []
        self._from_ns: list[int] = []  # per builder: the start of the first period it hands out

    @property
    def intervals(self) -> tuple[int, ...]:
        return self._intervals

    @property
    def base_s(self) -> int | None:
        """The base interval (None until the first candle)."""
        return self._base_s

    def add(self, candle: Candle) -> list[Candle]:
        """Take one closed base candle; return the higher candles now closed, by close time (the shorter interval
        first when two close together)."""
        if self._base_s is None:
            self._start(candle)
        elif candle.interval_s != self._base_s:
            raise TimeframeError(
                f"{self._pair}: a {candle.interval_s} s candle in a feed of {self._base_s} s candles (one base "
                "interval per pair)"
            )
        _, ts, interval_s, open_, high, low, close, volume, trades = candle
        close_ns = ts + interval_s * NS_PER_SECOND
        done: list[Candle] = []
        for builder, first in zip(self._builders, self._from_ns, strict=True):
            if ts < first:
                continue  # the leading partial period: never handed out
            done += builder.add_bar(ts, open_, high, low, close, volume, trades)
            done += builder.close_through(close_ns)
        if len(done) > 1:
            done.sort(key=lambda c: (c.ts_ns + c.interval_s * NS_PER_SECOND, c.interval_s))
        return done

    def _start(self, candle: Candle) -> None:
        check_timeframes(candle.interval_s, self._intervals, self._pair)
        self._base_s = candle.interval_s
        for interval in self._intervals:
            span = interval * NS_PER_SECOND
            first = -(-candle.ts_ns // span) * span  # the first period start at or after the feed's first candle
            self._builders.append(CandleBuilder(self._pair, interval, BuilderState(first)))
            self._from_ns.append(first)
