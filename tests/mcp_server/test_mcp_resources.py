"""Every resource, on both protocol versions, parses into its documented view model."""

import json
from decimal import Decimal

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents
from pydantic import BaseModel

from engine.runtime.facade import EngineFacade
from engine.runtime.views import (
    BalanceView,
    MarketView,
    OrdersView,
    PerformanceView,
    PositionsView,
    RiskView,
    StatusView,
    StrategiesView,
    StrategyView,
    TradesView,
)
from trading_mcp.models import EventsView
from trading_mcp.resources import RESOURCE_TEMPLATES, RESOURCE_URIS
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio

SCHEMAS: dict[str, type[BaseModel]] = {
    "bot://status": StatusView,
    "bot://balance": BalanceView,
    "bot://positions": PositionsView,
    "bot://orders": OrdersView,
    "bot://trades": TradesView,
    "bot://performance": PerformanceView,
    "bot://strategies": StrategiesView,
    "bot://risk": RiskView,
    "bot://events": EventsView,
    "bot://performance/strategy/ema_cross": PerformanceView,
    "bot://performance/pair/BTC-USD": PerformanceView,
    "bot://strategies/mean_reversion": StrategyView,
    "bot://market/BTC-USD": MarketView,
}


async def read_json(client: Client, uri: str) -> dict[str, object]:
    result = await client.read_resource(uri)
    (content,) = result.contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "application/json"
    data = json.loads(content.text)
    assert isinstance(data, dict)
    return data


async def test_lists_every_resource_and_template(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert listed == set(RESOURCE_URIS)
    assert templates == set(RESOURCE_TEMPLATES)


@pytest.mark.parametrize("uri", sorted(SCHEMAS))
async def test_every_resource_parses_as_its_view(facade: EngineFacade, mode: str, uri: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        data = await read_json(client, uri)
    view = SCHEMAS[uri].model_validate(data)
    assert view is not None


async def test_status_says_paper_and_what_runs(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        status = StatusView.model_validate(await read_json(client, "bot://status"))
    assert status.mode == "paper"
    assert status.trading_state == "active"
    assert "replay" in status.data_source
    assert status.uptime_s >= 0
    assert set(status.strategies_running) == {"ema_cross", "mean_reversion"}


async def test_decimals_are_strings_never_floats(facade: EngineFacade) -> None:
    async with Client(build_server(facade)) as client:
        balance = await read_json(client, "bot://balance")
        market = await read_json(client, "bot://market/BTC-USD")
    assert isinstance(balance["equity"], str)
    assert Decimal(balance["equity"]) > 0
    assert isinstance(market["last"], str)


async def test_pair_names_are_matched_loosely(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        market = await read_json(client, "bot://market/xbt-usd")
    assert market["pair"] == "BTC/USD"


@pytest.mark.parametrize("uri", ["bot://market/DOGEEUR", "bot://strategies/nope", "bot://performance/strategy/nope"])
async def test_unknown_names_are_clear_not_found_errors(facade: EngineFacade, mode: str, uri: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        with pytest.raises(MCPError, match=r"(?i)not found|unknown"):
            await client.read_resource(uri)
