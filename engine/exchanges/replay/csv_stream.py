"""A large Kraken OHLCVT file replayed chunk by chunk, so that memory does not grow with the file.

A 50k-candle file is parsed once into :class:`~engine.exchanges.replay.columns.CandleColumns`, which a backtest
holds at about 1.3 KB per candle (``bench/bench_memory.py``: a million one-minute candles read at once peaked at
1.35 GB). A file of millions of candles would not fit that way, so a file above :data:`STREAM_ABOVE_BYTES` is read
as :class:`StreamedCandles`:

* :meth:`StreamedCandles.scan` reads the whole file once, a chunk of about :data:`CHUNK_BYTES` at a time (cut at
  a line end), parses and checks every chunk with the same parsers as a small file (so a bad line is reported
  with its line number in the whole file, before anything trades), checks that times keep increasing from one
  chunk to the next, and keeps only an index: where each chunk starts, its rows and its first and last times;
* reading candles parses the chunks again as they are reached (only one is held at a time), so a replay of any
  length holds one chunk's candles.

Reading the file twice costs a second parse (about 3 µs a candle); a file small enough to hold is read once.
"""

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import overload

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.replay.columns import CandleColumns
from engine.exchanges.replay.errors import ReplayFormatError, ReplayOrderError
from engine.exchanges.replay.ohlcvt_csv import parse_ohlcvt_columns

__all__ = ["CHUNK_BYTES", "STREAM_ABOVE_BYTES", "StreamedCandles"]

CHUNK_BYTES = 1 << 20  # about 22,000 rows of a Kraken file per chunk
STREAM_ABOVE_BYTES = 4 << 20  # about 90,000 rows of a Kraken file: larger files are streamed


@dataclass(frozen=True, slots=True)
class _Chunk:
    offset: int  # byte offset of its first line
    length: int  # bytes, up to and including its last line end
    first_row: int  # index of its first candle in the sequence
    rows: int  # candles of the sequence it holds
    lines_before: int  # lines of the file before it (for error line numbers)
    first_open_ns: int  # of its first candle in the sequence
    last_close_ns: int  # of its last candle in the sequence
    parsed: int  # candles its bytes hold (more than ``rows`` where a window cuts it)
    skip: int = 0  # candles of its bytes before the first one in the sequence


class StreamedCandles(Sequence[Candle]):
    """The candles of one Kraken OHLCVT file, addressable by index, held one chunk at a time.

    Build with :meth:`scan`. ``pair`` and ``interval_s`` are those of every candle. Reading is sequential-friendly:
    :meth:`iter_from` parses each chunk once; a random read (``candles[i]``) parses the chunk holding ``i``
    unless it is the one read last.
    """

    __slots__ = ("_cached", "_cached_index", "_chunks", "_ends", "_path", "_rows", "_source", "interval_s", "pair")

    def __init__(self, path: Path, pair: str, interval_s: int, chunks: list[_Chunk], source: str) -> None:
        self._path = path
        self.pair = pair
        self.interval_s = interval_s
        self._chunks = chunks
        self._source = source
        self._rows = sum(chunk.rows for chunk in chunks)
        self._ends = [chunk.first_row + chunk.rows for chunk in chunks]  # bisect: the chunk holding a row
        self._cached: CandleColumns | None = None
        self._cached_index = -1

    @classmethod
    def scan(
        cls,
        path: Path,
        *,
        pair: str,
        interval_s: int | None,
        source: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> "StreamedCandles":
        """Read and check the whole file, keeping only the index of its chunks.

        Raises:
            ReplayFormatError: a bad line (numbered in the whole file) or no candle at all.
            ReplayOrderError: a row's time is not after the previous row's, within or across chunks.
            ReplayConfigError: ``interval_s`` is given and not positive.
            OSError: the file cannot be read.
        """
        name = source or str(path)
        chunks: list[_Chunk] = []
        rows = lines = 0
        last_open_s: int | None = None
        for offset, data in _chunks_of(path, chunk_bytes):
            text = data.decode("utf-8")
            columns = _parse(text, pair, interval_s, name, lines)
            if interval_s is None:
                interval_s = columns.interval_s  # inferred from the first chunk; the others follow it
            if len(columns):
                first_s = columns.ts_ns[0] // NS_PER_SECOND
                if last_open_s is not None and first_s <= last_open_s:
                    line = lines + 1 + _leading_blank_lines(text)
                    detail = f"time {first_s} is not after the previous row's {last_open_s}"
                    raise ReplayOrderError(name, detail, line=line)
                last_open_s = columns.ts_ns[-1] // NS_PER_SECOND
                chunks.append(
                    _Chunk(
                        offset,
                        len(data),
                        rows,
                        len(columns),
                        lines,
                        columns.ts_ns[0],
                        columns.ts_ns[-1] + interval_s * NS_PER_SECOND,
                        len(columns),
                    )
                )
                rows += len(columns)
            lines += text.count("\n")
        if not rows or interval_s is None:
            raise ReplayFormatError(name, "no events to replay")
        return cls(path, pair, interval_s, chunks, name)

    # -- the Sequence protocol ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._rows

    def __bool__(self) -> bool:
        return self._rows > 0

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candle]: ...

    def __getitem__(self, index: int | slice) -> Candle | list[Candle]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._rows))]
        if index < 0:
            index += self._rows
        if not 0 <= index < self._rows:
            raise IndexError("candle index out of range")
        k = bisect.bisect_right(self._ends, index)
        return self._columns(k)[index - self._chunks[k].first_row]

    def __iter__(self) -> Iterator[Candle]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[Candle]:
        """The candles from index ``start`` on (``start`` in ``0..len(self)``), one chunk parsed at a time."""
        if start >= self._rows:
            return iter(())
        k = bisect.bisect_right(self._ends, start)
        first = self._columns(k).iter_from(start - self._chunks[k].first_row)
        rest = (candle for j in range(k + 1, len(self._chunks)) for candle in self._columns(j, keep=False))
        return chain(first, rest)

    def window(self, first: int, stop: int) -> "StreamedCandles":
        """The candles ``first .. stop - 1`` (clamped to the file), still streamed from the file.

        Raises:
            ValueError: the window holds no candle.
        """
        first, stop = max(0, first), min(self._rows, stop)
        if first >= stop:
            raise ValueError(f"no candle between index {first} and {stop}")
        chunks: list[_Chunk] = []
        rows = 0
        interval_ns = self.interval_s * NS_PER_SECOND
        for k, chunk in enumerate(self._chunks):
            lo, hi = max(first, chunk.first_row), min(stop, chunk.first_row + chunk.rows)
            if lo >= hi:
                continue
            if (lo, hi) == (chunk.first_row, chunk.first_row + chunk.rows):
                chunks.append(replace(chunk, first_row=rows))
            else:
                ts_ns = self._columns(k, keep=False).ts_ns
                i, j = lo - chunk.first_row, hi - chunk.first_row
                cut = replace(chunk, first_row=rows, rows=j - i, skip=chunk.skip + i)
                chunks.append(replace(cut, first_open_ns=ts_ns[i], last_close_ns=ts_ns[j - 1] + interval_ns))
            rows += hi - lo
        return StreamedCandles(self._path, self.pair, self.interval_s, chunks, self._source)

    # -- times ------------------------------------------------------------------------------------------------
    @property
    def first_close_ns(self) -> int:
        return self._chunks[0].first_open_ns + self.interval_s * NS_PER_SECOND

    @property
    def last_close_ns(self) -> int:
        return self._chunks[-1].last_close_ns

    def index_at(self, close_ns: int) -> int:
        """The index of the first candle closing at or after ``close_ns`` (``len(self)`` if none)."""
        k = bisect.bisect_left([chunk.last_close_ns for chunk in self._chunks], close_ns)
        if k == len(self._chunks):
            return self._rows
        columns = self._columns(k)
        return self._chunks[k].first_row + bisect.bisect_left(columns.close_times_ns(), close_ns)

    def close_times_ns(self) -> list[int]:
        """Every candle's close time (a list as long as the file: for tests and small files)."""
        return [t for k in range(len(self._chunks)) for t in self._columns(k, keep=False).close_times_ns()]

    # -- chunks -----------------------------------------------------------------------------------------------
    def _columns(self, k: int, *, keep: bool = True) -> CandleColumns:
        if k == self._cached_index and self._cached is not None:
            return self._cached
        chunk = self._chunks[k]
        with self._path.open("rb") as f:
            f.seek(chunk.offset)
            data = f.read(chunk.length)
        columns = _parse(data.decode("utf-8"), self.pair, self.interval_s, self._source, chunk.lines_before)
        if len(columns) != chunk.parsed or columns.ts_ns[chunk.skip] != chunk.first_open_ns:
            raise ReplayFormatError(self._source, "the file changed while it was being replayed")
        if chunk.rows != chunk.parsed:  # a window cuts this chunk
            i, j = chunk.skip, chunk.skip + chunk.rows
            columns = CandleColumns(
                self.pair,
                self.interval_s,
                columns.ts_ns[i:j],
                columns.open[i:j],
                columns.high[i:j],
                columns.low[i:j],
                columns.close[i:j],
                columns.volume[i:j],
                columns.trades[i:j],
            )
        if keep:
            self._cached, self._cached_index = columns, k
        return columns

    def __repr__(self) -> str:
        return f"StreamedCandles({self._source!r}, {self._rows} candles in {len(self._chunks)} chunks)"


def _chunks_of(path: Path, chunk_bytes: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, data)`` of consecutive pieces of the file, each ending at a line end (the last one may not)."""
    offset = 0
    carry = b""
    with path.open("rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data  # one line longer than a chunk: read on
                continue
            yield offset, data[:cut]
            offset += cut
            carry = data[cut:]
    if carry:
        yield offset, carry


def _parse(text: str, pair: str, interval_s: int | None, source: str, lines_before: int) -> CandleColumns:
    """One chunk's candles; a bad line is reported with its number in the whole file."""
    try:
        return parse_ohlcvt_columns(text, pair=pair, interval_s=interval_s, source=source)
    except ReplayFormatError as exc:
        if exc.line is None or not lines_before:
            raise
        raise type(exc)(exc.source, exc.detail, line=exc.line + lines_before) from None


def _leading_blank_lines(text: str) -> int:
    return len(text) - len(text.lstrip("\n"))
