"""Kraken's downloadable OHLCVT CSV files: ``time,open,high,low,close,volume,trades`` with no header.

``time`` is the bar's open in unix seconds. Kraken names the files ``<PAIR>_<minutes>.csv``
(``XBTUSD_60.csv``); bars without a trade are simply absent.

Two parsers give the same candles. The fast one handles well-formed files: it splits the whole text at once,
converts each column with ``map`` (C-speed loops) and checks the rules column-wise. On anything unexpected it
gives up and the careful row-by-row parser runs instead, which reports the first bad line with its number.
Results are :class:`CandleColumns` (candle objects are made when read); :func:`parse_ohlcvt_csv` makes them all
at once.
"""

import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from itertools import islice, pairwise, repeat
from operator import le, lt, mul
from pathlib import Path

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.replay.columns import CandleColumns
from engine.exchanges.replay.errors import ReplayConfigError, ReplayFormatError, ReplayOrderError

__all__ = [
    "infer_interval_s",
    "parse_ohlcvt_columns",
    "parse_ohlcvt_csv",
    "split_kraken_csv_name",
]

_NAME = re.compile(r"^(?P<pair>.+?)_(?P<minutes>\d+)$")
# Timestamps at or beyond this are not unix seconds (it is the year 5138): the file is likely in milliseconds.
_MAX_UNIX_S = 10**11
# Enough gaps to find the interval, cheap enough to take before the main loop.
_INFER_SAMPLE = 2000
_FIELDS = "time,open,high,low,close,volume,trades"
_ZERO = Decimal(0)
_CANNOT_INFER = "cannot infer the bar interval from fewer than two rows; pass it"


def split_kraken_csv_name(path: str | Path) -> tuple[str | None, int | None]:
    """Read ``(pair, interval_s)`` from a Kraken CSV file name: ``XBTUSD_60.csv`` gives ``("XBTUSD", 3600)``.

    Either part is ``None`` when the name does not follow Kraken's ``<PAIR>_<minutes>`` pattern.
    """
    stem = Path(path).stem
    match = _NAME.match(stem)
    if match is None:
        return (stem or None), None
    minutes = int(match["minutes"])
    return match["pair"], (minutes * 60 if minutes > 0 else None)


def infer_interval_s(times_s: Sequence[int]) -> int | None:
    """The most common positive gap between successive timestamps (seconds), or ``None`` with fewer than two.

    Bars without trades are missing from Kraken's files, but whole intervals still dominate the gaps.
    """
    gaps = Counter(b - a for a, b in pairwise(times_s) if b > a)
    if not gaps:
        return None
    # Ties go to the smaller gap: a missing bar can only make a gap longer.
    return min(gaps.items(), key=lambda item: (-item[1], item[0]))[0]


def _sample_times(lines: Sequence[str]) -> list[int]:
    times: list[int] = []
    for line in lines[: _INFER_SAMPLE + 1]:
        head = line.split(",", 1)[0].strip()
        if not head:
            continue
        try:
            times.append(int(head))
        except ValueError:
            break  # the main loop reports the bad line with its number
    return times


def parse_ohlcvt_csv(
    text: str,
    *,
    pair: str,
    interval_s: int | None = None,
    source: str = "<text>",
) -> list[Candle]:
    """Parse OHLCVT CSV text into closed candles in time order.

    Args:
        text: the whole file's text.
        pair: the pair name put on every candle.
        interval_s: the bar length; inferred from the most common gap between rows when ``None``.
        source: the file name used in error messages.

    Raises:
        ReplayFormatError: a row does not have 7 fields, a number does not parse or is not finite, the prices
            are inconsistent (low > open/close > high) or volume/trades are negative, the interval cannot be
            inferred, or timestamps look like milliseconds. Carries the 1-based line number.
        ReplayOrderError: a row's time is not after the previous row's.
        ReplayConfigError: ``interval_s`` is given and not positive.
    """
    return list(parse_ohlcvt_columns(text, pair=pair, interval_s=interval_s, source=source))


def parse_ohlcvt_columns(
    text: str,
    *,
    pair: str,
    interval_s: int | None = None,
    source: str = "<text>",
) -> CandleColumns:
    """:func:`parse_ohlcvt_csv`, with the candles kept as columns (made into objects when read).

    Raises:
        ReplayFormatError, ReplayOrderError, ReplayConfigError: as :func:`parse_ohlcvt_csv`.
    """
    if interval_s is not None and (isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s <= 0):
        raise ReplayConfigError(f"interval_s must be a positive int, got {interval_s!r}")
    fast = _parse_fast(text)
    if fast is not None:
        times = fast[0]
        if interval_s is None:
            interval_s = infer_interval_s(times[: _INFER_SAMPLE + 1])
            if interval_s is None:
                raise ReplayFormatError(source, _CANNOT_INFER)
        ts_ns = list(map(mul, times, repeat(NS_PER_SECOND)))
        return CandleColumns(pair, interval_s, ts_ns, *fast[1:])
    # Something is off: the careful parser finds it and says where (or, if it accepts the rows, parses them).
    lines = text.splitlines()
    if interval_s is None:
        interval_s = infer_interval_s(_sample_times(lines))
        if interval_s is None:
            raise ReplayFormatError(source, _CANNOT_INFER)
    return CandleColumns.from_candles(_parse_checked(lines, pair, interval_s, source), pair=pair, interval_s=interval_s)


_Columns = tuple[list[int], list[Decimal], list[Decimal], list[Decimal], list[Decimal], list[Decimal], list[int]]


def _parse_fast(text: str) -> _Columns | None:
    """The columns of well-formed rows (times in seconds), or None as soon as anything is unexpected (then
    nothing is reported)."""
    # Every non-finite Decimal is spelled with an n ("NaN", "sNaN", "Inf", "Infinity", any case), and nothing
    # else valid in these rows contains one: without an n, every number that parses is finite.
    if "n" in text or "N" in text or "\x00" in text:
        return None
    # Rows joined with a ",\x00," marker and split as one text: each row must come out as exactly 7 fields and
    # then the marker, which one C-level count over every 8th field proves (a row with a comma too many or too
    # few would shift a marker off its place). The marker is a cached one-character string: no allocation.
    body = text[:-1] if text.endswith("\n") else text
    if "\r" in body or "\n\n" in body or body.startswith("\n") or body.endswith("\n"):
        # Blank lines or other line ends: by line, as str.splitlines() sees them.
        lines = [line for line in text.splitlines() if line]
        rows = len(lines)
        joined = ",\x00,".join(lines)
    else:
        # The usual file: one "\n" per row; a single C-level replace turns them into markers.
        rows = body.count("\n") + 1 if body else 0
        joined = body.replace("\n", ",\x00,")
    if not rows:
        return [], [], [], [], [], [], []
    fields = joined.split(",")
    if len(fields) != 8 * rows - 1 or fields[7::8].count("\x00") != rows - 1:
        return None
    try:
        # One C-level loop per column (a Python loop that reused the Decimal of a price string equal to its
        # neighbour's runs twice the instructions of parsing every price).
        times = list(map(int, fields[0::8]))
        opens = list(map(Decimal, fields[1::8]))
        highs = list(map(Decimal, fields[2::8]))
        lows = list(map(Decimal, fields[3::8]))
        closes = list(map(Decimal, fields[4::8]))
        volumes = list(map(Decimal, fields[5::8]))
        # Trade counts repeat a lot: parse each distinct string once.
        counts = fields[6::8]
        distinct = set(counts)
        trades = list(map(dict(zip(distinct, map(int, distinct), strict=True)).__getitem__, counts))
    except (ValueError, ArithmeticError):
        return None
    consistent = (
        all(map(lt, times, islice(times, 1, None)))
        and all(map(le, lows, opens))
        and all(map(le, opens, highs))
        and all(map(le, lows, closes))
        and all(map(le, closes, highs))
        and min(volumes) >= _ZERO
        and min(trades) >= 0
        and times[0] >= 0
        and times[-1] < _MAX_UNIX_S
    )
    if not consistent:
        return None
    return times, opens, highs, lows, closes, volumes, trades


def _parse_checked(lines: list[str], pair: str, interval_s: int, source: str) -> list[Candle]:
    """Row by row, checking everything; raises on the first bad row with its line number."""
    candles: list[Candle] = []
    append = candles.append
    zero = Decimal(0)
    prev_ts = -(2**63)
    prev_c = zero
    prev_c_s = ""
    lineno = 0
    line = ""
    try:
        for lineno, line in enumerate(lines, 1):
            if not line:
                continue
            t, o_s, h_s, l_s, c_s, v_s, n_s = line.split(",")
            ts = int(t)
            if ts <= prev_ts:
                raise ReplayOrderError(source, f"time {ts} is not after the previous row's {prev_ts}", line=lineno)
            prev_ts = ts
            # Equal price strings share one Decimal: a string compare is cheaper than a parse, and on
            # XBTUSD_60.csv a quarter of the bars repeat a price, which saves ~10 % of the memory.
            o = prev_c if o_s == prev_c_s else Decimal(o_s)
            h = o if h_s == o_s else Decimal(h_s)
            lo = o if l_s == o_s else Decimal(l_s)
            c = o if c_s == o_s else h if c_s == h_s else lo if c_s == l_s else Decimal(c_s)
            prev_c = c
            prev_c_s = c_s
            v = Decimal(v_s)
            n = int(n_s)
            # NaN raises in these comparisons and in the sum; an infinity survives only to is_finite().
            if not (lo <= o <= h and lo <= c <= h and v >= zero and n >= 0 and (h - lo + v).is_finite()):
                raise _BadBar("need low <= open, close <= high, finite values, volume >= 0 and trades >= 0")
            append(Candle(pair, ts * NS_PER_SECOND, interval_s, o, h, lo, c, v, n))
    except ReplayFormatError:
        raise
    except (ValueError, ArithmeticError) as exc:
        detail = str(exc) if isinstance(exc, _BadBar) else f"expected 7 numbers {_FIELDS}"
        raise ReplayFormatError(source, f"{detail}; got {line!r}", line=lineno) from exc
    if candles and (candles[0].ts_ns < 0 or prev_ts >= _MAX_UNIX_S):
        raise ReplayFormatError(source, f"times {candles[0].ts_ns // NS_PER_SECOND}..{prev_ts} are not unix seconds")
    return candles


class _BadBar(ValueError):
    """A row parsed but its values contradict each other."""
