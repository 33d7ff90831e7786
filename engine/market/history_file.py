"""The files a history download writes: the candles (Kraken's OHLCVT CSV) and the progress file beside them.

**Candles**: ``time,open,high,low,close,volume,trades`` with no header, ``time`` the interval's start in unix
seconds, one line per complete interval, oldest first, the numbers as Kraken wrote them (Decimal text, never
through a float). This is what the replay reads (:mod:`engine.exchanges.replay.ohlcvt_csv`), so ``backtest`` and
``run --data`` take the file as it is.

**Progress** (``<file>.progress.json``): what was asked (pair, interval, first interval), how many bytes of the
candle file are complete, the candle builder's state (:class:`~engine.market.candles_from_trades.BuilderState`:
the next interval to write, the last close, the interval being built) and, while Kraken's Trades are being paged,
the cursor. It is replaced atomically after the candles it describes are on disk, so the candle file may hold
more than the progress file knows (a run killed in between) but never less: the next run cuts it back to
``out_bytes`` and goes on from the cursor, writing the same bytes again.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.market.candles_from_trades import BuilderState, OpenBar

__all__ = [
    "PROGRESS_SUFFIX",
    "DownloadProgress",
    "ProgressFileError",
    "TradesCursor",
    "ohlcvt_line",
    "progress_path",
]

PROGRESS_SUFFIX = ".progress.json"
_VERSION = 1
Source = Literal["", "ohlc", "trades"]


class ProgressFileError(ValueError):
    """The progress file cannot be read or does not describe a download; the message says which."""


def ohlcvt_line(candle: Candle) -> str:
    """One candle as a line of Kraken's OHLCVT CSV (with its newline); numbers keep the digits they came with."""
    return (
        f"{candle.ts_ns // NS_PER_SECOND},{candle.open:f},{candle.high:f},{candle.low:f},{candle.close:f},"
        f"{candle.volume:f},{candle.trades}\n"
    )


def progress_path(out: Path) -> Path:
    """The progress file of the candle file ``out`` (beside it)."""
    return out.with_name(out.name + PROGRESS_SUFFIX)


@dataclass(frozen=True, slots=True)
class TradesCursor:
    """Where paging through ``/0/public/Trades`` stands.

    Attributes:
        since_ns: the ``since`` of the next request (Kraken's ``last`` of the previous answer; exclusive).
        last_trade_id: the newest trade id taken (a trade at or below it is a repeat), None when unknown.
    """

    since_ns: int
    last_trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """One download's progress, as kept beside its candle file.

    Attributes:
        pair: the canonical pair name (``ETH/USD``).
        interval_min: the candle interval in minutes.
        first_start_s: the first interval asked for (unix seconds, on an interval boundary).
        out_bytes: how many bytes of the candle file are complete lines this progress describes.
        candles: how many candles those bytes hold.
        builder: the candle builder's state (``next_start_ns``: the next interval to write).
        trades: the Trades cursor while building from trades; None when no paging is under way (a new download,
            or one whose last candles came from OHLC: paging then starts at ``builder.next_start_ns``).
        source: where the last candles came from (``ohlc``, ``trades``; empty before any).
        finished: the last run reached the present (a new run only adds what is new).
    """

    pair: str
    interval_min: int
    first_start_s: int
    out_bytes: int = 0
    candles: int = 0
    builder: BuilderState = field(default_factory=lambda: BuilderState(0))
    trades: TradesCursor | None = None
    source: Source = ""
    finished: bool = False

    def to_json(self) -> str:
        builder = self.builder
        bar = builder.bar
        document: dict[str, Any] = {
            "version": _VERSION,
            "pair": self.pair,
            "interval_min": self.interval_min,
            "first_start_s": self.first_start_s,
            "out_bytes": self.out_bytes,
            "candles": self.candles,
            "next_start_ns": builder.next_start_ns,
            "last_close": None if builder.last_close is None else format(builder.last_close, "f"),
            "bar": None
            if bar is None
            else {
                "start_ns": bar.start_ns,
                "open": format(bar.open, "f"),
                "high": format(bar.high, "f"),
                "low": format(bar.low, "f"),
                "close": format(bar.close, "f"),
                "volume": format(bar.volume, "f"),
                "trades": bar.trades,
            },
            "trades": None
            if self.trades is None
            else {"since_ns": str(self.trades.since_ns), "last_trade_id": self.trades.last_trade_id},
            "source": self.source,
            "finished": self.finished,
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str = "the progress file") -> "DownloadProgress":
        """Read a progress file's text.

        Raises:
            ProgressFileError: not JSON, another version, or a field missing or of the wrong kind.
        """
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ProgressFileError(f"{where} is not JSON ({exc})") from None
        if not isinstance(doc, Mapping) or doc.get("version") != _VERSION:
            raise ProgressFileError(f"{where} is not a version {_VERSION} download progress file")
        try:
            bar_doc = doc["bar"]
            bar = None
            if bar_doc is not None:
                bar = OpenBar(
                    _int(bar_doc["start_ns"]),
                    _dec(bar_doc["open"]),
                    _dec(bar_doc["high"]),
                    _dec(bar_doc["low"]),
                    _dec(bar_doc["close"]),
                    _dec(bar_doc["volume"]),
                    _int(bar_doc["trades"]),
                )
            trades_doc = doc["trades"]
            trades = None
            if trades_doc is not None:
                last_id = trades_doc["last_trade_id"]
                trades = TradesCursor(int(str(trades_doc["since_ns"])), None if last_id is None else _int(last_id))
            source = doc["source"]
            if source not in ("", "ohlc", "trades"):
                raise ValueError(f"source {source!r}")
            last_close = doc["last_close"]
            progress = cls(
                pair=_str(doc["pair"]),
                interval_min=_int(doc["interval_min"]),
                first_start_s=_int(doc["first_start_s"]),
                out_bytes=_int(doc["out_bytes"]),
                candles=_int(doc["candles"]),
                builder=BuilderState(_int(doc["next_start_ns"]), None if last_close is None else _dec(last_close), bar),
                trades=trades,
                source=source,
                finished=doc["finished"] is True,
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise ProgressFileError(f"{where} is malformed ({type(exc).__name__}: {exc})") from None
        if progress.out_bytes < 0 or progress.candles < 0 or progress.interval_min <= 0:
            raise ProgressFileError(f"{where} is malformed (negative sizes or interval)")
        return progress


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _dec(value: object) -> Decimal:
    if not isinstance(value, str):
        raise TypeError(f"expected a decimal string, got {value!r}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{value!r} is not finite")
    return result
