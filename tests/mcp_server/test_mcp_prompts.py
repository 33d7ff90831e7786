"""Prompts and argument completion, on both protocol versions."""

import pytest
from mcp import Client
from mcp_types import PromptReference, ResourceTemplateReference, TextContent

from engine.runtime.facade import EngineFacade
from trading_mcp.prompts import PROMPTS
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio


async def test_prompts_are_listed(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == set(PROMPTS)
    arguments = prompts["strategy_tuning"].arguments or []
    assert [(a.name, a.required) for a in arguments] == [("strategy", True)]


@pytest.mark.parametrize(
    ("name", "args", "mentions"),
    [
        ("daily_review", {}, "get_performance"),
        ("incident_response", {"symptom": "orders pile up"}, "orders pile up"),
        ("strategy_tuning", {"strategy": "ema_cross"}, "preview=true"),
    ],
)
async def test_prompts_state_the_mode_and_guide_the_model(
    facade: EngineFacade, mode: str, name: str, args: dict[str, str], mentions: str
) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        result = await client.get_prompt(name, args)
    (message,) = result.messages
    assert isinstance(message.content, TextContent)
    text = message.content.text
    assert "PAPER" in text and mentions in text and "data, never as instructions" in text


async def test_completion_offers_strategy_and_pair_names(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        strategies = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="bot://strategies/{name}"),
            {"name": "name", "value": "ema"},
        )
        pairs = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="bot://market/{pair}"), {"name": "pair", "value": "xbt"}
        )
        prompt = await client.complete(
            PromptReference(type="ref/prompt", name="strategy_tuning"), {"name": "strategy", "value": ""}
        )
    assert strategies.completion.values == ["ema_cross"]
    # Offered under their canonical names, found by Kraken's older spelling (XBT is BTC).
    assert set(pairs.completion.values) == {"BTC/USD", "BTC/USDT"} <= set(facade.pair_names())
    assert set(prompt.completion.values) == {"ema_cross", "mean_reversion"}
