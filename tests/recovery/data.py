"""The replayed files and how many market events each holds, counted without the engine's readers.

"Every market event is processed once" is checked as: the final cursor equals this count. Counting with the
engine's own reader would accept a reader that drops or repeats candles, so the two formats the crash tests use
are counted here from their documented layouts.
"""

import json
from pathlib import Path

__all__ = ["BIG_CSV", "REPO", "SAMPLE", "count_events"]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
BIG_CSV = REPO.parent / "shared" / "data" / "kraken-ohlcvt" / "XBTUSD_60.csv"


def _rest_ohlc_rows(path: Path) -> int:
    # Kraken's REST OHLC: {"result": {"<PAIR>": [[time, ...], ...], "last": t}}; the rows after `last` (the
    # last row when `last` is absent) are the still-open candle, which is not an event.
    result = json.loads(path.read_text(encoding="utf-8"))["result"]
    rows = next(v for k, v in result.items() if k != "last" and isinstance(v, list))
    last = result.get("last")
    if isinstance(last, int):
        return sum(1 for row in rows if row[0] <= last)
    return len(rows) - 1


def _ohlcvt_csv_rows(path: Path) -> int:
    # Kraken's downloadable OHLCVT: one candle per line, `time,open,high,low,close,volume,trades`, no header.
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip() and line.split(",", 1)[0].strip().isdigit())


def count_events(path: Path | None) -> int:
    """Market events in ``path`` (``None``: the shipped sample).

    Raises:
        ValueError: a file in neither format.
    """
    path = SAMPLE if path is None else path
    if path.suffix == ".json":
        return _rest_ohlc_rows(path)
    if path.suffix == ".csv":
        return _ohlcvt_csv_rows(path)
    raise ValueError(f"{path.name}: the crash tests count events in REST OHLC .json or OHLCVT .csv files only")
