"""The Trades paging state machine and the OHLC window (:mod:`engine.exchanges.kraken.history`), fed plain data."""

from decimal import Decimal

import pytest

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.exchanges.kraken.history import (
    CaughtUp,
    FetchTime,
    FetchTrades,
    TradesPager,
    interval_start_ns,
    ohlc_candles_from,
)
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.protocol.rest import OhlcResult, TradesResult
from engine.market.history_file import TradesCursor

S = NS_PER_SECOND


def trade(ts_ns: int, trade_id: int | None) -> TradeTick:
    return TradeTick("ETH/USD", ts_ns, Decimal("100.0"), Decimal("1"), "buy", trade_id)


def page(ids: range, last: int | None = None) -> TradesResult:
    trades = [trade(1000 * S + i * S, i) for i in ids]
    return TradesResult(trades, last if last is not None else (trades[-1].ts_ns if trades else 0))


def test_full_pages_go_on_a_short_one_asks_the_clock_then_confirms_then_it_is_caught_up() -> None:
    pager = TradesPager(TradesCursor(999 * S), floor_ns=0, page_size=3)
    assert pager.next_action() == FetchTrades(999 * S, 3)
    assert [t.trade_id for t in pager.on_trades(page(range(0, 3)))] == [0, 1, 2]
    assert pager.next_action() == FetchTrades(1002 * S, 3)  # the answer's last, not a trade's own time
    pager.on_trades(page(range(3, 6)))
    pager.on_trades(page(range(6, 8)))  # short: the present
    assert pager.next_action() == FetchTime()
    pager.on_time(2000 * S)
    assert pager.next_action() == FetchTrades(1007 * S, 3)  # once more, after the clock was read
    assert [t.trade_id for t in pager.on_trades(page(range(8, 9)))] == [8]
    assert pager.next_action() == CaughtUp(2000 * S - 5 * S)
    assert pager.done and pager.pages == 4 and pager.trades == 9


def test_a_confirming_page_that_is_full_sends_the_pager_back_to_paging() -> None:
    pager = TradesPager(TradesCursor(0), floor_ns=0, page_size=2)
    pager.on_trades(page(range(0, 1)))
    pager.on_time(5000 * S)
    pager.on_trades(page(range(1, 3)))  # a burst came in meanwhile
    assert isinstance(pager.next_action(), FetchTrades)
    pager.on_trades(page(range(3, 4)))
    assert pager.next_action() == FetchTime()  # the clock is read again: the old reading proves nothing now


def test_repeated_trades_and_trades_before_the_floor_are_dropped() -> None:
    pager = TradesPager(TradesCursor(0, last_trade_id=4), floor_ns=0, page_size=10)
    assert [t.trade_id for t in pager.on_trades(page(range(2, 9)))] == [5, 6, 7, 8]  # 2..4 were taken before
    assert pager.cursor == TradesCursor(1008 * S, 8)
    pager = TradesPager(TradesCursor(0), floor_ns=1006 * S, page_size=7)
    assert [t.trade_id for t in pager.on_trades(page(range(2, 9)))] == [6, 7, 8]  # 2..5 are before the floor
    assert [t.trade_id for t in pager.on_trades(page(range(5, 10)))] == [9]  # and the floor does not forget ids
    # Trades without an id cannot be told apart from repeats by id: only the cursor and the floor apply.
    pager = TradesPager(TradesCursor(0), floor_ns=0, page_size=10)
    assert len(pager.on_trades(TradesResult([trade(5 * S, None), trade(6 * S, None)], 6 * S))) == 2


def test_a_full_page_that_does_not_move_the_cursor_is_refused() -> None:
    pager = TradesPager(TradesCursor(1002 * S), floor_ns=0, page_size=3)
    with pytest.raises(KrakenProtocolError, match="cursor"):
        pager.on_trades(page(range(0, 3), last=1002 * S))


def test_ohlc_gives_committed_candles_from_an_interval_or_says_it_does_not_reach_back() -> None:
    def candle(start_s: int) -> Candle:
        price = Decimal(start_s)
        return Candle("ETH/USD", start_s * S, 60, price, price, price, price, Decimal(1), 1)

    result = OhlcResult([candle(t) for t in (600, 660, 720, 780)], candle(840), last=780)
    assert ohlc_candles_from(result, 660 * S) == result.candles[1:]
    assert ohlc_candles_from(result, 600 * S) == result.candles
    assert ohlc_candles_from(result, 840 * S) == []  # nothing committed from there yet
    assert ohlc_candles_from(result, 540 * S) is None  # the window starts later
    late = OhlcResult(result.candles, None, last=660)  # rows after last are not committed
    assert ohlc_candles_from(late, 600 * S) == result.candles[:2]
    assert interval_start_ns(3599 * S + 999, 3600) == 0 and interval_start_ns(3600 * S, 3600) == 3600 * S
