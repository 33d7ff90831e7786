"""Closing Kraken's running ohlc candles: each closed candle is emitted once, in order, across reconnects."""

from decimal import Decimal

from engine.domain.market_data import Candle
from engine.exchanges.kraken.market_feed import CandleCloser

MINUTE = 60 * 10**9


def candle(minute: int, close: str) -> Candle:
    price = Decimal(close)
    return Candle("XBTUSD", minute * MINUTE, 60, price, price, price, price, Decimal(1))


def test_a_candle_closes_when_the_next_interval_begins() -> None:
    closer = CandleCloser()
    assert closer.feed(candle(1, "10")) == []
    assert closer.feed(candle(1, "11")) == []  # the running candle changes
    assert closer.feed(candle(2, "12")) == [candle(1, "11")]
    assert closer.feed(candle(3, "13")) == [candle(2, "12")]


def test_a_snapshot_after_a_reconnect_emits_only_what_was_missed() -> None:
    closer = CandleCloser()
    for minute in (1, 2, 3):
        closer.feed(candle(minute, str(minute)))
    # The new connection's snapshot repeats 1..3 and brings 4 and 5 (missed while disconnected) and 6 (running).
    emitted = [c for minute in range(1, 7) for c in closer.feed(candle(minute, str(minute)))]
    assert [c.ts_ns // MINUTE for c in emitted] == [3, 4, 5]


def test_pairs_and_intervals_are_closed_independently() -> None:
    closer = CandleCloser()
    other = Candle("ETHXBT", MINUTE, 60, Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1))
    closer.feed(candle(1, "10"))
    closer.feed(other)
    assert closer.feed(candle(2, "10")) == [candle(1, "10")]
