"""Tell the supported replay file formats apart from their content.

A file starting with ``{`` is a saved Kraken REST response: the first element of its first row is a number for
OHLC rows (``[1762777020, "106038.2", ...]``) and a string for Trades rows (``["105433.60000", ...]``). A file
whose first line is seven comma-separated fields starting with an integer is Kraken's OHLCVT CSV.
"""

import re
from enum import StrEnum
from pathlib import Path

from engine.exchanges.replay.errors import ReplayFormatError
from engine.exchanges.replay.rest_json import load_kraken_result

__all__ = ["ReplayFormat", "detect_format", "detect_format_text"]

# The head is enough for any real file; the whole file is read only when no row starts within it.
_HEAD_BYTES = 64 * 1024
_FIRST_ROW = re.compile(r"\[\s*\[\s*(.)")


class ReplayFormat(StrEnum):
    """The file formats a :class:`~engine.exchanges.replay.source.ReplaySource` reads."""

    OHLCVT_CSV = "ohlcvt_csv"
    """Kraken's downloadable ``time,open,high,low,close,volume,trades`` CSV (no header)."""
    OHLC_JSON = "ohlc_json"
    """A saved ``/0/public/OHLC`` response."""
    TRADES_JSON = "trades_json"
    """A saved ``/0/public/Trades`` response."""


def detect_format_text(text: str, *, source: str = "<text>") -> ReplayFormat | None:
    """Classify the start of a file; ``None`` when it is JSON but no row starts within ``text``.

    Raises:
        ReplayFormatError: the text is empty or is neither a Kraken JSON response nor an OHLCVT CSV.
    """
    stripped = text.lstrip()
    if not stripped:
        raise ReplayFormatError(source, "the file is empty")
    if stripped[0] == "{":
        match = _FIRST_ROW.search(stripped)
        if match is None:
            return None
        first = match[1]
        if first == '"':
            return ReplayFormat.TRADES_JSON
        if first.isdigit():
            return ReplayFormat.OHLC_JSON
        raise ReplayFormatError(source, f"JSON rows start with {first!r}: neither OHLC nor Trades rows")
    first_line = stripped.split("\n", 1)[0].strip()
    fields = first_line.split(",")
    if len(fields) == 7 and fields[0].strip().isdigit():
        return ReplayFormat.OHLCVT_CSV
    raise ReplayFormatError(
        source,
        "not a Kraken OHLC/Trades JSON response nor an OHLCVT CSV (time,open,high,low,close,volume,trades, "
        f"no header); first line {first_line[:80]!r}",
    )


def detect_format(path: str | Path) -> ReplayFormat:
    """Classify a replay file by its content (the file name is not trusted).

    Raises:
        ReplayFormatError: unknown or empty content, a saved Kraken error, or JSON without rows.
        OSError: the file cannot be read.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
        complete = not handle.read(1)
    fmt = detect_format_text(head.decode("utf-8", errors="replace"), source=str(path))
    if fmt is not None:
        return fmt
    text = head.decode("utf-8", errors="replace") if complete else path.read_text(encoding="utf-8")
    fmt = detect_format_text(text, source=str(path))
    if fmt is not None:
        return fmt
    # No row anywhere: surface a saved Kraken error or a malformed response, else say why we cannot tell.
    load_kraken_result(text, source=str(path))
    raise ReplayFormatError(str(path), "the response holds no rows, so OHLC and Trades cannot be told apart")
