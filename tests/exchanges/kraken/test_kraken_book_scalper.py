"""micro_scalper on Kraken's (fake) live book.

Paper (``run --market kraken``): the engine subscribes to the book of the strategy's pair, quotes post-only at the
touch of the verified book the feed maintains, and the paper venue fills the quote as maker when a later book
update crosses it; nothing reaches the (fake) exchange. Live (``mode = "live"``): the same quotes go to Kraken as
post-only good-till-date limit orders, fill there as maker, and the position is then offered at the ask."""

from collections.abc import AsyncGenerator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import TEST_KEY, TEST_SECRET, FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Inbox

from engine.domain.market_data import MarketEvent
from engine.domain.orders import Order, OrderSide, OrderStatus
from engine.exchanges.kraken.adapter import KrakenExchange
from engine.exchanges.kraken.market_feed import KrakenMarketSource
from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.live import build_kraken_engine

pytestmark = pytest.mark.anyio
D = Decimal


class Watched:
    """A market source that reports each batch once the engine has processed it (it asked for the next)."""

    def __init__(self, inner: KrakenMarketSource) -> None:
        self.inner = inner
        self.batches: Inbox[int] = Inbox()
        self.description = inner.description
        self.identity = inner.identity
        self.total = None
        self.replayable = False

    def history(self, stop: int) -> Iterator[MarketEvent]:
        return self.inner.history(stop)

    async def stream(self, start: int) -> AsyncGenerator[Sequence[MarketEvent]]:
        async for batch in self.inner.stream(start):
            yield batch
            self.batches.append(len(batch))


def scalper_orders(engine: Engine, side: OrderSide) -> list[Order]:
    return [o for o in engine.oms.orders.values() if o.strategy == "scalp" and o.side is side]


async def test_micro_scalper_quotes_on_the_live_book_and_the_paper_venue_fills_it_as_maker(tmp_path: Path) -> None:
    async with FakeKraken() as fake:
        # Spread 400 / 50,200 = 79.7 bps; imbalance over 5 levels (3 - 2) / 5 = 0.2: a bid of 300 / 50,000.
        fake.set_book("XBTUSD", [("50000.0", "2"), ("49990.0", "1")], [("50400.0", "1"), ("50410.0", "1")])
        config = config_from_mapping(
            {
                "market": {"source": "kraken", "pair": "XBTUSD"},
                "paper": {"starting_balances": {"USD": "10000"}, "fee_volume_30d": "0"},
                "strategies": [
                    {"name": "scalp", "kind": "micro_scalper", "pair": "XBTUSD", "order_quote_amount": "300"}
                ],
                "kraken": {
                    "rest_url": fake.rest_url,
                    "ws_public_url": fake.ws_public_url,
                    "ws_private_url": fake.ws_private_url,
                },
            }
        )
        inner = KrakenMarketSource(fake.ws_public_url, {"BTC/USD": example_instruments()["BTC/USD"]}, settings=FAST_WS)
        source = Watched(inner)
        engine = Engine(config, tmp_path / "scalp.db", source, live_clock=True)
        with anyio.fail_after(30):
            async with engine.serve():
                await fake.wait_until(lambda: any("BTC/USD" in s.subs.get("book", ()) for s in fake.sessions))
                await source.batches.wait_until(lambda _: bool(scalper_orders(engine, OrderSide.BUY)))
                # The asks fall through the bid: 0.006 of the 0.01 at 49,900.0 fills it.
                fake.set_book("XBTUSD", [("49800.0", "3")], [("49900.0", "0.01"), ("50400.0", "1")])
                await source.batches.wait_until(lambda _: bool(scalper_orders(engine, OrderSide.SELL)))
            await inner.aclose()
        assert not fake.market.orders  # paper trading: nothing was sent to the exchange
    (bid,) = scalper_orders(engine, OrderSide.BUY)
    assert (bid.limit_price, bid.qty, bid.status, bid.avg_price) == (
        D("50000.0"),
        D("0.006"),
        OrderStatus.FILLED,
        D(50000),
    )
    assert bid.expires_ns == bid.created_ts_ns + 10 * 10**9
    (offer,) = scalper_orders(engine, OrderSide.SELL)
    assert (offer.limit_price, offer.qty, offer.status) == (D("49900.0"), D("0.006"), OrderStatus.NEW)
    assert engine.portfolio.position_qty("scalp", "BTC/USD") == D("0.006")
    fee = D("0.006") * D(50000) * D("0.0025")  # maker: 0.75
    assert engine.portfolio.balances.total("USD") == D(10000) - D(300) - fee


async def test_micro_scalper_sends_post_only_good_till_date_quotes_to_kraken_live(tmp_path: Path) -> None:
    async with FakeKraken(balances={"USD": D(10000)}) as fake:
        # 0.8 / 100.4 = 79.7 bps; imbalance (3 - 2) / 5 = 0.2: a bid of 50 / 100 = 0.5 at 100.0.
        fake.set_book("XBTUSD", [("100.0", "2"), ("99.9", "1")], [("100.8", "1"), ("100.9", "1")])
        config = config_from_mapping(
            {
                "mode": "live",
                "market": {"source": "kraken", "pair": "XBTUSD"},
                "strategies": [
                    {"name": "scalp", "kind": "micro_scalper", "pair": "XBTUSD", "order_quote_amount": "50"}
                ],
                "kraken": {
                    "rest_url": fake.rest_url,
                    "ws_public_url": fake.ws_public_url,
                    "ws_private_url": fake.ws_private_url,
                    "tier": "pro",
                },
            }
        )
        env = {"KRAKEN_API_KEY": TEST_KEY, "KRAKEN_API_SECRET": TEST_SECRET}
        engine = build_kraken_engine(
            config, tmp_path / "live.db", RunOptions(keep_alive=True), env=env, ws_settings=FAST_WS
        )
        with anyio.fail_after(20):
            async with engine.serve():
                venue = engine.exchange
                assert isinstance(venue, KrakenExchange)
                await fake.wait_until(lambda: bool(fake.market.orders))
                (bid,) = fake.market.orders.values()
                # The asks fall through the bid (0.5 at 99.9 is taken by it); what is left: 99.8 / 100.5.
                fake.set_book("XBTUSD", [("99.8", "1")], [("99.9", "0.5"), ("100.5", "1")])
                (mine,) = scalper_orders(engine, OrderSide.BUY)
                while mine.status is not OrderStatus.FILLED:
                    await venue.next_event()
                # A later update (leaning to the asks: no new bid) in case the last one came before the fill.
                fake.set_book("XBTUSD", [("99.8", "1")], [("100.5", "2")])
                await fake.wait_until(lambda: len(fake.market.orders) == 2)
        offer = next(o for o in fake.market.orders.values() if o is not bid)
    assert (bid.side, bid.price, bid.vol, bid.post_only, bid.time_in_force) == (
        "buy",
        D("100.0"),
        D("0.5"),
        True,
        "GTD",
    )
    assert bid.status == "closed" and bid.vol_exec == D("0.5")
    assert bid.expire_ns is not None and mine.expires_ns is not None
    assert bid.expire_ns // 10**9 == mine.expires_ns // 10**9  # Kraken takes it to the second
    assert (offer.side, offer.price, offer.vol, offer.post_only) == ("sell", D("100.5"), D("0.5"), True)
    assert offer.time_in_force == "GTD" and offer.status == "open"
    with Store.open_readonly(tmp_path / "live.db") as store:
        (fill,) = store.load_fills()
    assert (fill.side, fill.qty, fill.price, fill.liquidity) == (OrderSide.BUY, D("0.5"), D("100.0"), "maker")
