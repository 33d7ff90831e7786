"""Arguments are parsed strictly for every tool, and a refusal is one plain sentence that changes nothing."""

import re
from typing import Any

import pytest
from fakes.mcp_harness import ok, snapshot, text_of
from mcp import Client
from mcp_types import CallToolResult

from engine.runtime.facade import EngineFacade
from trading_mcp.arguments import DECIMAL_TEXT
from trading_mcp.server import build_server
from trading_mcp.tools_read import READ_TOOLS
from trading_mcp.tools_research import RESEARCH_TOOLS
from trading_mcp.tools_write import WRITE_TOOLS

pytestmark = pytest.mark.anyio

# What Python's Decimal()/int() would read as a number, and JSON-looking spellings that are not plain decimals.
HOSTILE_NUMBER_TEXT = [" 5 ", "\u0665", "\uff15", "1_000", "NaN", "nan", "Infinity", "-Infinity", "1e3", "5.", ".5"]
HOSTILE_NUMBER_TEXT += ["+5", "0x10", "5\n", "", "--5", "5..0", "\u00bd", "5 ", "\t5"]


def assert_one_plain_sentence(result: CallToolResult, *names: str) -> str:
    """The refusal is a single sentence: it names the argument, says nothing changed, and is no pydantic dump."""
    assert result.is_error
    text = text_of(result)
    assert "\n" not in text and "pydantic" not in text.lower() and "http" not in text
    assert "validation error" not in text.lower() and "Error executing tool" not in text
    assert text.endswith(".") and text.count(". ") == 0, text
    assert "nothing was changed" in text
    for name in names:
        assert name in text, text
    return text


@pytest.mark.parametrize("text", HOSTILE_NUMBER_TEXT, ids=ascii)
async def test_numbers_as_text_must_be_plain_ascii_decimals(facade: EngineFacade, mode: str, text: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        before = await snapshot(client)
        tuned = await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": text}})
        limited = await client.call_tool("set_risk_limits", {"changes": {"max_order_qty": text}})
        assert await snapshot(client) == before
    assert_one_plain_sentence(tuned, "tune_strategy", "'params.fast'", "plain decimal number")
    assert_one_plain_sentence(limited, "set_risk_limits", "'changes.max_order_qty'", "plain decimal number")
    assert ascii(text[:24]) in text_of(tuned)  # shown escaped, so a look-alike digit is visible as what it is


async def test_plain_decimal_text_and_json_numbers_are_accepted(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        as_text = ok(await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": "10"}}))
        as_int = ok(await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"slow": 30}}))
        as_float = ok(await client.call_tool("tune_strategy", {"name": "mean_reversion", "params": {"entry_z": 0.5}}))
        negative = ok(await client.call_tool("tune_strategy", {"name": "mean_reversion", "params": {"exit_z": "-0.5"}}))
        qty_text = ok(await client.call_tool("set_risk_limits", {"changes": {"max_order_qty": "0.5"}}))
        qty_float = ok(await client.call_tool("set_risk_limits", {"changes": {"max_order_qty": 0.25}}))
    assert as_text["changes"] == [{"name": "fast", "before": "12", "after": "10"}] and as_text["applied"]
    assert as_int["changes"] == [{"name": "slow", "before": "26", "after": "30"}]
    assert as_float["changes"][0]["after"] == "0.5" and negative["changes"][0]["after"] == "-0.5"
    limits = {limit["name"]: limit["value"] for limit in qty_float["limits"]}
    assert {limit["name"]: limit["value"] for limit in qty_text["limits"]}["max_order_qty"] == "0.5"
    assert limits["max_order_qty"] == "0.25"


def test_the_decimal_rule_is_ascii_only() -> None:
    accepted = ["0", "5", "-5", "12.5", "-0.001", "007", "1" * 60]
    assert all(DECIMAL_TEXT.fullmatch(t) for t in accepted)
    assert not any(DECIMAL_TEXT.fullmatch(t) for t in HOSTILE_NUMBER_TEXT)
    # Every Unicode decimal digit other than 0-9 is refused (Python's int() and Decimal() accept them all).
    foreign = [chr(c) for c in range(0x80, 0x110000) if chr(c).isdecimal()]
    assert len(foreign) > 300 and not any(DECIMAL_TEXT.fullmatch(d) for d in foreign)


@pytest.mark.parametrize("value", [-0.0, 0, 1, 0.0, "true", "false", "", None, [], {}], ids=repr)
async def test_booleans_must_be_json_booleans(facade: EngineFacade, mode: str, value: Any) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        before = await snapshot(client)
        tuned = await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}, "preview": value})
        orders = await client.call_tool("get_orders", {"open_only": value})
        assert await snapshot(client) == before  # -0.0 used to mean preview=false: the change was applied
    assert_one_plain_sentence(tuned, "'preview' must be true or false")
    assert_one_plain_sentence(orders, "'open_only' must be true or false")


async def test_real_booleans_are_accepted(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        preview = ok(
            await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}, "preview": True})
        )
        applied = ok(
            await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}, "preview": False})
        )
        all_orders = ok(await client.call_tool("get_orders", {"open_only": False}))
    assert preview["applied"] is False and applied["applied"] is True
    assert isinstance(all_orders["orders"], list)


@pytest.mark.parametrize("value", [5.0, 5.5, True, "5", None], ids=repr)
async def test_integers_are_not_taken_from_floats_booleans_or_text(facade: EngineFacade, mode: str, value: Any) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        result = await client.call_tool("get_trades", {"limit": value})
        fine = ok(await client.call_tool("get_trades", {"limit": 5}))
    assert_one_plain_sentence(result, "get_trades", "'limit' must be a whole number")
    assert len(fine["trades"]) <= 5


@pytest.mark.parametrize("value", [5, 5.5, True, None, ["BTC/USD"], {"pair": "BTC/USD"}], ids=repr)
async def test_strings_are_not_coerced_from_other_json(facade: EngineFacade, mode: str, value: Any) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        market = await client.call_tool("get_market", {"pair": value})
        stop = await client.call_tool("emergency_stop", {"confirmation_token": value if value is not None else 7})
    assert_one_plain_sentence(market, "get_market", "'pair'")
    assert_one_plain_sentence(stop, "emergency_stop", "'confirmation_token'")
    assert (await facade.status()).trading_state == "active"


async def test_an_unknown_key_is_refused_and_named_with_the_known_ones(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        before = await snapshot(client)
        tuned = await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}, "dry_run": True})
        status = await client.call_tool("get_status", {"verbose": True})
        assert await snapshot(client) == before  # the extra key used to be dropped and the change applied
    assert_one_plain_sentence(tuned, "unknown argument 'dry_run' (known: name, params, preview)")
    assert_one_plain_sentence(status, "unknown argument 'verbose' (this tool takes no arguments)")
    (refusal,) = await facade.events(kind="tool_refused")
    assert refusal.payload["tool"] == "tune_strategy" and refusal.payload["error"] == text_of(tuned)


async def test_every_tool_refuses_unknown_keys_and_advertises_a_closed_schema(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        listed = (await client.list_tools()).tools
        assert {t.name for t in listed} == set(READ_TOOLS) | set(RESEARCH_TOOLS) | set(WRITE_TOOLS)
        results = {t.name: await client.call_tool(t.name, {"zz_unknown": 1}) for t in listed}
    for tool in listed:
        assert tool.input_schema.get("additionalProperties") is False, tool.name
        known = ", ".join(tool.input_schema.get("properties", {})) or "this tool takes no arguments"
        text = assert_one_plain_sentence(results[tool.name], tool.name, "unknown argument 'zz_unknown'")
        assert known in text
    assert (await facade.status()).trading_state == "active"


async def test_several_problems_stay_one_sentence(facade: EngineFacade, mode: str) -> None:
    args = {"name": "", "params": "not an object", "preview": 0, "a": 1, "b": 2}
    async with Client(build_server(facade), mode=mode) as client:
        result = await client.call_tool("tune_strategy", args)
    text = assert_one_plain_sentence(result, "unknown arguments 'a', 'b'", "'name' must not be empty")
    assert re.search(r"; and \d+ more\.$", text), text


async def test_a_missing_argument_is_named(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        result = await client.call_tool("set_risk_limits", {})
    assert_one_plain_sentence(result, "'changes' is required")


async def test_an_object_sent_as_json_text_is_still_read(facade: EngineFacade, mode: str) -> None:
    """Claude Desktop sends objects as JSON strings; the SDK parses them before validation, strictly after."""
    async with Client(build_server(facade), mode=mode) as client:
        preview = ok(
            await client.call_tool("tune_strategy", {"name": "ema_cross", "params": '{"fast": 10}', "preview": True})
        )
        hostile = await client.call_tool("tune_strategy", {"name": "ema_cross", "params": '{"fast": "\\u0665"}'})
    assert preview["changes"] == [{"name": "fast", "before": "12", "after": "10"}]
    assert_one_plain_sentence(hostile, "'params.fast' must be a plain decimal number")


async def test_refusals_by_the_engine_or_a_confirmation_read_plainly_too(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        engine = await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 0}})
        token = await client.call_tool("emergency_stop", {"confirmation_token": "guessed"})
    assert engine.is_error and text_of(engine).startswith("Invalid request: fast: ")
    assert text_of(engine).endswith("Nothing was changed.")
    assert token.is_error and text_of(token).startswith("Confirmation refused: the token is unknown")
    (first, second) = await facade.events(kind="tool_refused")
    assert first.payload["error"] == text_of(engine) and second.payload["error"] == text_of(token)
