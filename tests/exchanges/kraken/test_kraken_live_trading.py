"""Live trading against the fake Kraken, end to end through the engine: orders placed, filled and canceled with
the engine's books matching Kraken's; a restart reconciles what changed while the engine was down; faults end with
the engine trading again (or refusing to start), with nothing lost and nothing doubled."""

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import TEST_KEY, TEST_SECRET, FakeKraken
from fakes.kraken_fake_clients import FAST_WS, rest_client

from engine.domain.instrument import Instrument
from engine.domain.orders import ClientOrderId, OrderStatus
from engine.exchanges.kraken.adapter import KrakenExchange
from engine.exchanges.kraken.market_feed import KrakenMarketSource
from engine.exchanges.kraken.translate import EXTERNAL_STRATEGY
from engine.exchanges.port import ExchangePort, ExchangeUnavailable
from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade
from engine.runtime.live import build_kraken_engine

pytestmark = pytest.mark.anyio
D = Decimal
ENV = {"KRAKEN_API_KEY": TEST_KEY, "KRAKEN_API_SECRET": TEST_SECRET}
BOOK = ([("100.0", "1"), ("99.9", "2")], [("100.1", "1"), ("100.2", "3")])


def live_config(fake: FakeKraken) -> Config:
    return config_from_mapping(
        {
            "mode": "live",
            "market": {"source": "kraken", "pair": "XBTUSD"},
            "strategies": [],
            "paper": {"starting_balances": {"USD": "5000"}},
            "kraken": {
                "rest_url": fake.rest_url,
                "ws_public_url": fake.ws_public_url,
                "ws_private_url": fake.ws_private_url,
                "tier": "pro",
            },
        }
    )


def live_engine(fake: FakeKraken, db: Path, env: Mapping[str, str] = ENV) -> Engine:
    return build_kraken_engine(live_config(fake), db, RunOptions(keep_alive=True), env=env, ws_settings=FAST_WS)


def venue(engine: Engine) -> KrakenExchange:
    assert isinstance(engine.exchange, KrakenExchange)
    return engine.exchange


async def until(engine: Engine, predicate: Callable[[], bool]) -> None:
    while not predicate():
        await venue(engine).next_event()


def status(engine: Engine, client_id: str) -> OrderStatus:
    return engine.oms.orders[ClientOrderId(client_id)].status


def books_match_kraken(engine: Engine, fake: FakeKraken) -> bool:
    books = engine.portfolio.balances
    return all(books.total(asset) == amount for asset, amount in fake.market.balances.items())


async def place(facade: EngineFacade, side: str, qty: str, price: str) -> str:
    # A manual limit price is held to price_band_pct of the pair's mark, and refused before the engine has one:
    # wait for the first price from the public feed (bounded by the caller's fail_after).
    while (await facade.market("XBTUSD")).last is None:
        await anyio.lowlevel.checkpoint()
    view = await facade.submit_order("XBTUSD", side, D(qty), D(price), source="test")  # type: ignore[arg-type]
    return view.client_id


async def test_live_orders_are_placed_filled_and_canceled_and_the_books_match_kraken(tmp_path: Path) -> None:
    async with FakeKraken(balances={"USD": D(10000), "BTC": D(1)}) as fake:
        fake.set_book("XBTUSD", *BOOK)
        engine = live_engine(fake, tmp_path / "live.db")
        with anyio.fail_after(20):
            async with engine.serve() as facade:
                assert engine.mode == "live" and engine.portfolio.balances.total("USD") == D(10000)
                bought = await place(facade, "buy", "0.5", "99.5")
                assert status(engine, bought) is OrderStatus.NEW
                fake.public_trade("XBTUSD", "99.5", "1", side="sell")
                await until(engine, lambda: status(engine, bought) is OrderStatus.FILLED)
                resting = await place(facade, "sell", "0.2", "120.0")
                stopped = await facade.emergency_stop(flatten=False, source="test")
                await until(engine, lambda: status(engine, resting) is OrderStatus.CANCELED)
                assert books_match_kraken(engine, fake)
                await fake.wait_until(lambda: fake.dms_calls >= 1)
    assert stopped.canceled_orders == 1
    assert fake.calls["AddOrder"] == 0  # both went over the WebSocket
    with Store.open_readonly(tmp_path / "live.db") as store:
        (fill,) = store.load_fills()
    assert fill.trade_id == fake.market.orders[fake.orders_by_cl_ord_id(bought)[0].txid].trades[0]
    assert fill.liquidity == "maker" and fill.fee == D("0.12438")


async def test_a_restart_reconciles_orders_that_changed_while_the_engine_was_down(tmp_path: Path) -> None:
    async with FakeKraken(balances={"USD": D(10000)}) as fake:
        fake.set_book("XBTUSD", *BOOK)
        with anyio.fail_after(20):
            first = live_engine(fake, tmp_path / "live.db")
            async with first.serve() as facade:
                filled = await place(facade, "buy", "0.5", "99.5")
                canceled = await place(facade, "buy", "0.3", "98.0")
                partly = await place(facade, "buy", "0.4", "97.0")
            # While down: one fills, one is canceled, one fills in part, someone places an order on the website.
            fake.public_trade("XBTUSD", "99.5", "1", side="sell")
            fake.market.cancel(fake.orders_by_cl_ord_id(canceled)[0])
            fake.public_trade("XBTUSD", "97.0", "0.1", side="sell")
            fake.market.place(pair_name="XBTUSD", side="buy", ordertype="limit", vol=D("0.2"), price=D("90.0"))
            second = live_engine(fake, tmp_path / "live.db")
            async with second.serve():
                assert status(second, filled) is OrderStatus.FILLED
                assert status(second, canceled) is OrderStatus.CANCELED
                assert status(second, partly) is OrderStatus.PARTIALLY_FILLED
                (adopted,) = [o for o in second.oms.orders.values() if o.strategy == EXTERNAL_STRATEGY]
                assert adopted.is_open and adopted.qty == D("0.2")
                assert books_match_kraken(second, fake)
                # Live again: the rest of the partly filled order fills after the restart, once.
                fake.public_trade("XBTUSD", "96.0", "1", side="sell")
                await until(second, lambda: status(second, partly) is OrderStatus.FILLED)
                assert books_match_kraken(second, fake)
    with Store.open_readonly(tmp_path / "live.db") as store:
        fills = store.load_fills()
        adopted_events = store.count_events("order_adopted")
        findings = store.count_events("reconciliation")
    assert sorted(f.qty for f in fills) == [D("0.1"), D("0.3"), D("0.5")]
    assert adopted_events == 1 and findings >= 1


async def test_a_lost_connection_and_an_expired_token_neither_lose_nor_double_fills(tmp_path: Path) -> None:
    async with FakeKraken(balances={"USD": D(10000)}) as fake:
        fake.set_book("XBTUSD", *BOOK)
        engine = live_engine(fake, tmp_path / "live.db")
        with anyio.fail_after(20):
            async with engine.serve() as facade:
                resting = await place(facade, "buy", "0.5", "99.5")
                ws = venue(engine).private_ws
                assert ws is not None
                fake.expire_tokens()
                fake.drop_ws(private=True)
                fake.public_trade("XBTUSD", "99.5", "0.2", side="sell")  # fills while nobody listens
                await until(engine, lambda: engine.oms.orders[ClientOrderId(resting)].filled_qty == D("0.2"))
                await ws.wait_connected()
                fake.public_trade("XBTUSD", "99.5", "0.3", side="sell")
                await until(engine, lambda: status(engine, resting) is OrderStatus.FILLED)
                again = await place(facade, "buy", "0.1", "99.0")  # trading again
                assert status(engine, again) is OrderStatus.NEW
                assert books_match_kraken(engine, fake)
    assert ws.link.connections == 2 and ws.token_renewals >= 2
    assert engine.journal.anomalies == 0


async def test_an_add_order_answer_lost_over_rest_does_not_duplicate_the_order(tmp_path: Path) -> None:
    async with FakeKraken(balances={"USD": D(10000)}) as fake:
        fake.set_book("XBTUSD", *BOOK)
        config = live_config(fake)

        def rest_only(
            instruments: Mapping[str, Instrument], balances: Mapping[str, Decimal], clock: Callable[[], int]
        ) -> ExchangePort:
            return KrakenExchange(
                rest_client(fake, timeout_s=0.3), instruments, ws_private_url=None, poll_interval_s=0.05
            )

        source = KrakenMarketSource(fake.ws_public_url, {"BTC/USD": example_instruments()["BTC/USD"]}, settings=FAST_WS)
        engine = Engine(
            config,
            tmp_path / "live.db",
            source,
            exchange_factory=rest_only,
            live_clock=True,
            options=RunOptions(keep_alive=True),
        )
        fake.faults.lose_add_order_response = 1
        with anyio.fail_after(20):
            async with engine.serve() as facade:
                cid = await place(facade, "buy", "0.5", "99.5")
                assert status(engine, cid) is OrderStatus.NEW
                fake.public_trade("XBTUSD", "99.0", "1", side="sell")
                await until(engine, lambda: status(engine, cid) is OrderStatus.FILLED)
                assert books_match_kraken(engine, fake)
            await source.aclose()
    assert len(fake.orders_by_cl_ord_id(cid)) == 1 and fake.calls["AddOrder"] == 1 and fake.lost_responses == 1


async def test_wrong_keys_stop_the_engine_before_it_trades(tmp_path: Path) -> None:
    wrong: dict[str, Any] = {**ENV, "KRAKEN_API_SECRET": "d3Jvbmctc2VjcmV0LWZvci10aGUtdGVzdHMtb25seS0wMTIzNDU2Nzg5"}
    async with FakeKraken(balances={"USD": D(10000)}) as fake:
        engine = live_engine(fake, tmp_path / "live.db", env=wrong)
        with anyio.fail_after(20), pytest.raises(ExchangeUnavailable, match="EAPI:Invalid signature"):
            async with engine.serve():
                pytest.fail("the engine must not start with keys Kraken refuses")
    assert fake.bad_signatures >= 1 and not fake.market.orders and not fake.sessions
