"""Cancel one order and close one position through the facade: the normal order path, audited, and refusals that
change nothing."""

from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fakes.mcp_harness import paper_config, running_engine

from engine.errors import NotAllowed, NotFound
from engine.runtime.app import Engine, RunOptions
from engine.runtime.facade import EngineFacade

pytestmark = pytest.mark.anyio
D = Decimal


async def _serve_until_still(engine: Engine) -> None:
    with anyio.fail_after(30):
        await engine.done.wait()


async def test_closing_a_position_sends_a_market_sell_of_exactly_it_and_fills(tmp_path: Path) -> None:
    db = tmp_path / "close.db"
    first = Engine.from_config(paper_config(), db, options=RunOptions(max_events=60, keep_alive=True))
    async with first.serve() as facade:
        await _serve_until_still(first)
        (position,) = (await facade.positions()).positions
        assert position.qty > 0
        closed = await facade.close_position("xbtusd", source="test", by="operator")  # any spelling
        (order,) = closed.orders
        assert (order.pair, order.side, order.order_type, order.qty) == ("BTC/USD", "sell", "market", position.qty)
        assert order.strategy == position.strategy
        (audit,) = await facade.events(kind="close_position", limit=5)
        assert audit.source == "test" and audit.payload["result"]["orders"] == [order.client_id]  # type: ignore[index]
    # The next candle fills it (a market order decided on a close fills at the next open): the restart takes the
    # open sell back to the venue, and one more candle is enough.
    again = Engine.from_config(paper_config(), db, options=RunOptions(max_events=1, keep_alive=True))
    async with again.serve() as facade:
        await _serve_until_still(again)
        fills = [t for t in (await facade.trades(limit=50)).trades if t.client_id == order.client_id]
        (fill,) = fills
        assert (fill.side, fill.qty) == ("sell", position.qty)
        assert (await facade.positions()).positions == []


async def test_cancelling_a_resting_limit_order_cancels_it_and_only_it() -> None:
    async with running_engine(paper_config()) as (engine, facade):
        last = (await facade.market("BTC/USD")).last
        assert last is not None
        low = (last / 2).quantize(D("0.1"))
        keep = await facade.submit_order("BTC/USD", "buy", D("0.0001"), low, source="test")
        drop = await facade.submit_order("BTC/USD", "buy", D("0.0001"), low, source="test")
        view = await facade.cancel_order(drop.client_id, source="test")
        assert (view.client_id, view.status) == (drop.client_id, "canceled")
        assert engine.oms.open_ids == {keep.client_id}
        (audit,) = await facade.events(kind="cancel_order", limit=5)
        assert audit.payload["args"] == {"client_id": drop.client_id, "by": "client"}


async def _state(facade: EngineFacade) -> tuple[object, ...]:
    return (await facade.orders(open_only=False, limit=1000), await facade.positions(), await facade.balance())


async def test_refusals_name_the_reason_in_one_sentence_and_change_nothing() -> None:
    async with running_engine(paper_config()) as (_engine, facade):
        last = (await facade.market("BTC/USD")).last
        assert last is not None
        done = await facade.submit_order("BTC/USD", "buy", D("0.0001"), (last / 2).quantize(D("0.1")), source="t")
        await facade.cancel_order(done.client_id, source="t")
        before = await _state(facade)
        with pytest.raises(NotFound, match="no order 'nope' is known"):
            await facade.cancel_order("nope", source="t")
        with pytest.raises(NotAllowed, match=r"is canceled, not open: there is nothing to cancel"):
            await facade.cancel_order(done.client_id, source="t")
        with pytest.raises(NotAllowed, match="no open position in ETH/USD for any strategy: there is nothing"):
            await facade.close_position("ETH/USD", source="t")
        with pytest.raises(NotAllowed, match="no open position in BTC/USD for strategy 'manual'"):
            await facade.close_position("BTC/USD", "manual", source="t")
        with pytest.raises(NotFound, match="unknown pair"):
            await facade.close_position("NOPE/USD", source="t")
        with pytest.raises(NotFound, match="unknown strategy"):
            await facade.close_position("BTC/USD", "nobody", source="t")
        assert await _state(facade) == before
        assert await facade.events(kind="close_position", limit=5) == []


async def test_the_client_cannot_close_under_the_operators_halt_but_the_operator_can() -> None:
    async with running_engine(paper_config()) as (engine, facade):
        await facade.emergency_stop(flatten=False, source="operator:cli", by="operator")
        (position,) = (await facade.positions()).positions
        with pytest.raises(NotAllowed, match="halted by the operator"):
            await facade.close_position("BTC/USD", source="mcp:x")
        assert engine.oms.open_ids == set()
        closed = await facade.close_position("BTC/USD", position.strategy, source="operator:cli", by="operator")
        assert [o.qty for o in closed.orders] == [position.qty]
        assert engine.oms.open_ids == {closed.orders[0].client_id}  # sent despite the halt: an exit
