"""The fast OHLCVT CSV path gives exactly what the careful row-by-row parser gives (or its very error), and
CandleColumns behaves as a sequence of candles."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.market_data import Candle, make_candle
from engine.exchanges.replay import CandleColumns, ReplayError, parse_ohlcvt_columns, parse_ohlcvt_csv
from engine.exchanges.replay.ohlcvt_csv import _parse_checked, _parse_fast

S = 1_000_000_000

prices = st.integers(0, 5).flatmap(
    lambda places: st.decimals(min_value=Decimal(1).scaleb(-places), max_value=Decimal("99999"), places=places)
)
price_texts = st.tuples(prices, st.sampled_from(["{}", "{:f}", "{:.8f}", " {} "])).map(lambda t: t[1].format(t[0]))


@st.composite
def rows(draw: st.DrawFn) -> list[str]:
    count = draw(st.integers(0, 12))
    t = draw(st.integers(1_000_000_000, 1_700_000_000))
    out = []
    for _ in range(count):
        t += draw(st.sampled_from([60, 60, 60, 120, 3600]))
        o, c = draw(price_texts), draw(price_texts)
        lo = min(Decimal(o), Decimal(c)) - draw(st.sampled_from([Decimal(0), Decimal("0.5")]))
        hi = max(Decimal(o), Decimal(c)) + draw(st.sampled_from([Decimal(0), Decimal("1.25")]))
        lo_s = o if Decimal(o) == lo else c if Decimal(c) == lo else str(max(lo, Decimal(0)))
        hi_s = o if Decimal(o) == hi else c if Decimal(c) == hi else str(hi)
        vol = draw(st.sampled_from(["0", "0.1", "1.9916", "12", "0.00000001"]))
        trades = draw(st.integers(0, 9))
        out.append(f"{t},{o},{hi_s},{lo_s},{c},{vol},{trades}")
        if draw(st.integers(0, 9)) == 0:
            out.append("")  # blank lines are skipped
    return out


def careful(lines: list[str], interval_s: int = 60) -> list[Candle]:
    return _parse_checked(lines, "BTC/USD", interval_s, "<text>")


def same_candles(got: list[Candle], want: list[Candle]) -> None:
    assert got == want
    # Same Decimal representations too (exponents matter to everything computed from them).
    assert [tuple(map(str, c)) for c in got] == [tuple(map(str, c)) for c in want]


@settings(max_examples=200, deadline=None)
@given(rows(), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_fast_path_equals_careful_parser(lines: list[str], newline: str, trailing: bool) -> None:
    text = newline.join(lines) + (newline if trailing else "")
    assert _parse_fast(text) is not None  # well-formed: no fallback
    same_candles(parse_ohlcvt_csv(text, pair="BTC/USD", interval_s=60), careful(text.splitlines()))
    columns = parse_ohlcvt_columns(text, pair="BTC/USD", interval_s=60)
    same_candles(list(columns), careful(text.splitlines()))


GOOD = ["1381093200,122.0,123.5,121.0,123.0,0.1,1", "1381096800,123.0,124.0,122.5,123.9,1.9916,2"]
BAD_ROWS = {
    "nan": "1381100400,NaN,124.0,122.5,123.9,1,2",
    "inf": "1381100400,123.0,Infinity,122.5,123.9,1,2",
    "word": "1381100400,abc,124.0,122.5,123.9,1,2",
    "short": "1381100400,123.0,124.0,122.5,123.9,1",
    "long": "1381100400,123.0,124.0,122.5,123.9,1,2,3",
    "not after": "1381096800,123.0,124.0,122.5,123.9,1,2",
    "low above open": "1381100400,123.0,124.0,123.5,123.9,1,2",
    "negative volume": "1381100400,123.0,124.0,122.5,123.9,-1,2",
    "negative trades": "1381100400,123.0,124.0,122.5,123.9,1,-2",
    "nul": "1381100400,123.0,124.0,122.5,123.9,1,2\x00",
    "spaces only": "   ",
}


@pytest.mark.parametrize("bad", sorted(BAD_ROWS))
def test_a_bad_row_gets_the_careful_parsers_error(bad: str) -> None:
    lines = [*GOOD, BAD_ROWS[bad], "1381104000,123.0,124.0,122.5,123.9,1,2"]
    with pytest.raises(ReplayError) as expected:
        careful(lines, 3600)
    with pytest.raises(type(expected.value)) as got:
        parse_ohlcvt_columns("\n".join(lines), pair="BTC/USD", interval_s=3600)
    assert str(got.value) == str(expected.value)
    assert getattr(got.value, "line", None) == 3


def test_rows_that_only_add_up_to_seven_fields_each_are_refused() -> None:
    # One row a field short and a later one a field long: the total is right, the columns would shift.
    lines = [
        GOOD[0],
        "1381096800,123.0,124.0,122.5,123.9,2",
        "1381100400,123.0,124.0,122.5,123.9,1,2,1381104000",
        "1381107600,123.0,124.0,122.5,123.9,1,2",
    ]
    with pytest.raises(ReplayError) as got:
        parse_ohlcvt_columns("\n".join(lines), pair="BTC/USD", interval_s=3600)
    assert getattr(got.value, "line", None) == 2


def test_millisecond_times_are_refused_on_the_fast_path_too() -> None:
    with pytest.raises(ReplayError, match="not unix seconds"):
        parse_ohlcvt_columns("1381093200000,1,1,1,1,1,1\n1381096800000,1,1,1,1,1,1", pair="X", interval_s=3600)


def test_columns_read_like_a_list_of_candles() -> None:
    columns = parse_ohlcvt_columns("\n".join([*GOOD, "1381100400,123.9,125,123,124,3,4"]), pair="BTC/USD")
    assert isinstance(columns, CandleColumns) and len(columns) == 3 and columns.interval_s == 3600
    first = Candle("BTC/USD", 1381093200 * S, 3600, Decimal("122.0"), Decimal("123.5"), Decimal("121.0"),
                   Decimal("123.0"), Decimal("0.1"), 1)  # fmt: skip
    assert columns[0] == first and type(columns[0]) is Candle
    assert columns[-1] == list(columns)[2]
    assert columns[1:] == list(columns)[1:] == list(columns.iter_from(1))
    assert list(columns.iter_from(3)) == []
    assert columns.close_times_ns() == [c.close_ns for c in columns]
    again = CandleColumns.from_candles(list(columns), pair="BTC/USD", interval_s=3600)
    assert list(again) == list(columns)
    with pytest.raises(ValueError, match="same length"):
        CandleColumns("X", 60, [1], [], [], [], [], [], [])
    with pytest.raises(ValueError, match="every candle"):
        CandleColumns.from_candles([first], pair="ETH/BTC", interval_s=3600)


def test_made_candles_are_ordinary_candles() -> None:
    d = Decimal("1.5")
    made = make_candle("BTC/USD", 5, 60, d, d, d, d, d, 7)
    assert made == Candle("BTC/USD", 5, 60, d, d, d, d, d, 7) and type(made) is Candle
    assert hash(made) == hash(Candle("BTC/USD", 5, 60, d, d, d, d, d, 7))
    assert made.close_ns == 5 + 60 * S and Candle("X", 0, 1, d, d, d, d, d).trades == 0
    with pytest.raises(AttributeError):
        made.close = d  # type: ignore[misc]
