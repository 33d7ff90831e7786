"""Replay sources: Kraken market-data files turned into time-ordered market events for backtests.

Formats: Kraken's OHLCVT CSV downloads, and saved REST ``/0/public/OHLC`` and ``/0/public/Trades`` responses.
Parsers are pure functions on text; :class:`ReplaySource` reads a file and serves events by index;
:class:`Pacer` turns simulated time gaps into wall-clock waits. Errors: see :mod:`.errors`.
"""

from engine.exchanges.replay.aggregate import aggregate_trades
from engine.exchanges.replay.columns import CandleColumns
from engine.exchanges.replay.detect import ReplayFormat, detect_format, detect_format_text
from engine.exchanges.replay.errors import ReplayConfigError, ReplayError, ReplayFormatError, ReplayOrderError
from engine.exchanges.replay.ohlcvt_csv import (
    infer_interval_s,
    parse_ohlcvt_columns,
    parse_ohlcvt_csv,
    split_kraken_csv_name,
)
from engine.exchanges.replay.pacing import Pacer
from engine.exchanges.replay.rest_json import load_kraken_result, parse_ohlc_json, parse_trades_json
from engine.exchanges.replay.source import ReplaySource, event_time_ns, load_events

__all__ = [
    "CandleColumns",
    "Pacer",
    "ReplayConfigError",
    "ReplayError",
    "ReplayFormat",
    "ReplayFormatError",
    "ReplayOrderError",
    "ReplaySource",
    "aggregate_trades",
    "detect_format",
    "detect_format_text",
    "event_time_ns",
    "infer_interval_s",
    "load_events",
    "load_kraken_result",
    "parse_ohlc_json",
    "parse_ohlcvt_columns",
    "parse_ohlcvt_csv",
    "parse_trades_json",
    "split_kraken_csv_name",
]
