"""cancel_order and close_position through the control socket (what the HTTP gateway and an attaching serve use):
a client's calls, with the facade's refusals kept whole, and no way to claim the operator's authority."""

from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.errors import InvalidRequest, NotAllowed, NotFound
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.control_client import RemoteFacade
from engine.runtime.control_protocol import check_args
from engine.runtime.state_lock import StateLock

pytestmark = pytest.mark.anyio


async def test_cancel_and_close_through_the_socket_as_a_client(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    engine = Engine.from_config(
        config_from_mapping({"market": {"speed": "max"}}), db, options=RunOptions(max_events=60, keep_alive=True)
    )
    async with engine.serve() as local:
        with anyio.fail_after(30):
            await engine.done.wait()
        owner = StateLock.holder(db)
        assert owner is not None and owner.control is not None
        async with RemoteFacade.connect(Path(owner.control)) as remote:
            last = (await local.market("BTC/USD")).last
            assert last is not None
            rest = await local.submit_order(
                "BTC/USD", "buy", Decimal("0.0001"), (last / 2).quantize(Decimal("1")), source="t"
            )
            canceled = await remote.cancel_order(rest.client_id, source="mcp:remote")
            assert canceled.status == "canceled" and engine.oms.open_ids == set()
            with pytest.raises(NotAllowed, match="not open: there is nothing to cancel"):
                await remote.cancel_order(rest.client_id, source="mcp:remote")
            with pytest.raises(NotFound, match="no order 'zz' is known"):
                await remote.cancel_order("zz", source="mcp:remote")
            (position,) = (await local.positions()).positions
            await local.emergency_stop(flatten=False, source="operator:cli", by="operator")
            with pytest.raises(NotAllowed, match="halted by the operator"):
                await remote.close_position("BTC/USD", source="mcp:remote")  # the socket is never the operator
            assert engine.oms.open_ids == set()
            await local.resume(source="operator:cli", by="operator")
            closed = await remote.close_position("btc-usd", position.strategy, source="mcp:remote")
            assert [(o.side, o.qty) for o in closed.orders] == [("sell", position.qty)]
            events = await local.events(kind="close_position", limit=5)
            assert [e.source for e in events] == ["mcp:remote"]
    with pytest.raises(InvalidRequest, match="unknown argument"):
        check_args("close_position", {"pair": "BTC/USD", "source": "x", "by": "operator"})
