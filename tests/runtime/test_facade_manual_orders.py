"""Manual orders (the facade's operator API) pass the same risk checks as the strategies' orders."""

from decimal import Decimal

import pytest
from fakes.mcp_harness import paper_config, running_engine

from engine.errors import LimitExceeded

pytestmark = pytest.mark.anyio
D = Decimal


async def test_a_manual_order_beyond_the_risk_limits_is_refused_and_changes_nothing() -> None:
    config = paper_config(risk={"limits": {"max_order_notional": "500", "max_open_orders": 2}})
    async with running_engine(config) as (engine, facade):
        last = (await facade.market("BTC/USD")).last
        assert last is not None
        low = (last / 2).quantize(D("0.1"))  # rests far below the market
        before = dict(engine.oms.orders)
        with pytest.raises(LimitExceeded, match=r"refused by risk: order notional .* exceeds max_order_notional 500"):
            await facade.submit_order("BTC/USD", "buy", D("0.1"), low * 2, source="test")  # ~ 0.1 × last > 500
        assert engine.oms.orders == before
        for _ in range(2):
            await facade.submit_order("BTC/USD", "buy", D("0.0001"), low, source="test")
        with pytest.raises(LimitExceeded, match="max_open_orders is 2"):
            await facade.submit_order("BTC/USD", "buy", D("0.0001"), low, source="test")
        assert len(engine.oms.open_ids) == 2
        # A manual sell can only sell what was bought by hand (the "manual" position), never a strategy's.
        with pytest.raises(LimitExceeded, match="insufficient BTC"):
            await facade.submit_order("BTC/USD", "sell", D("0.0001"), last * 2, source="test")


async def test_a_refused_manual_order_is_recorded_like_a_strategys() -> None:
    config = paper_config(risk={"limits": {"max_order_notional": "500"}})
    async with running_engine(config) as (_engine, facade):
        last = (await facade.market("BTC/USD")).last
        assert last is not None
        with pytest.raises(LimitExceeded):
            await facade.submit_order("BTC/USD", "buy", D("0.1"), last.quantize(D("0.1")), source="test")
        refused = await facade.events(kind="order_refused", limit=500)
        (event,) = [e for e in refused if e.payload["strategy"] == "manual"]  # the strategies' own are there too
        assert event.payload["rule"] == "max_order_notional" and event.payload["pair"] == "BTC/USD"
        assert "exceeds max_order_notional 500" in str(event.payload["reason"])
