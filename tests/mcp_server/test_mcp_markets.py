"""The market scanner over MCP: the read-only tool ``scan_markets`` and the resource ``bot://markets``, in process
and through the engine's control socket, on a paper engine replaying the shipped sample.

Expected figures come from the replayed candles themselves, through the engine's one-bar-at-a-time Wilder ATR.
"""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path

import anyio
import pytest
from fakes.mcp_harness import WARM_EVENTS, ok, paper_config, running_engine, text_of
from mcp import Client
from mcp_types import TextResourceContents

from engine.domain.market_data import Candle
from engine.errors import InvalidRequest
from engine.market import ATR
from engine.runtime.app import Engine, RunOptions
from engine.runtime.control_client import RemoteFacade
from engine.runtime.facade import EngineFacade
from engine.runtime.markets_view import MarketsView
from engine.runtime.state_lock import StateLock
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio


def replayed(engine: Engine) -> list[Candle]:
    """The candles the engine has replayed (the sample is one pair of one-minute candles)."""
    events: Sequence[object] = engine.source.replay.events  # type: ignore[attr-defined]
    candles = [e for e in events[: engine.state.cursor] if isinstance(e, Candle)]
    assert len(candles) == WARM_EVENTS
    return candles


def engine_atr_pct(candles: list[Candle]) -> float:
    atr = ATR(14)
    value = None
    for c in candles:
        value = atr.update_bar(c.high, c.low, c.close)
    assert value is not None
    return float(value / candles[-1].close * 100)


async def test_scan_markets_is_listed_as_a_read_with_a_closed_schema(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools["scan_markets"]
    assert tool.annotations is not None and tool.annotations.read_only_hint is True
    assert tool.annotations.open_world_hint is True  # on Kraken's feed it asks Kraken
    assert tool.input_schema.get("additionalProperties") is False
    assert set(tool.input_schema["properties"]) == {"quote", "top", "size"}
    assert tool.output_schema is not None and "pairs" in tool.output_schema["properties"]


async def test_scan_markets_ranks_the_replayed_pair_as_the_engine_measures_it(mode: str) -> None:
    async with running_engine() as (engine, facade), Client(build_server(facade), mode=mode) as client:
        candles = replayed(engine)
        data = ok(await client.call_tool("scan_markets", {"top": 5, "size": 500}))
    view = MarketsView.model_validate(data)
    (pair,) = view.pairs
    instrument = engine.instruments[candles[-1].pair]
    assert (pair.pair, pair.base, pair.quote, pair.status) == (
        instrument.pair,
        instrument.base,
        instrument.quote,
        instrument.status,
    )
    assert view.quote == instrument.quote and view.size_usd == 500 and view.ranked == 1
    assert pair.candles == WARM_EVENTS and pair.last == float(candles[-1].close)
    assert pair.atr_pct == pytest.approx(engine_atr_pct(candles), abs=1e-4)
    closes = [float(c.close) for c in candles[-21:]]
    path = sum(abs(b - a) for a, b in pairwise(closes))
    assert pair.trend == pytest.approx(abs(closes[-1] - closes[0]) / path, abs=1e-4)
    assert pair.volume_24h_quote == pytest.approx(sum(float(c.volume * c.close) for c in candles), abs=0.01)
    assert pair.spread_bps is None and pair.liquidity is None
    assert "spread: no Ticker (no bid or ask in candle data)" in pair.missing
    assert "the engine's replayed data" in view.source and view.as_of is not None


async def test_bot_markets_reads_every_quote(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        result = await client.read_resource("bot://markets")
    (content,) = result.contents
    assert isinstance(content, TextResourceContents) and content.mime_type == "application/json"
    view = MarketsView.model_validate(json.loads(content.text))
    assert view.quote == "any" and view.ranked == 1 and len(view.pairs) == 1
    assert set(view.weights) == {"volume", "spread", "volatility", "trend", "liquidity"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"top": 0}, "'top' must be at least 1"),
        ({"top": "5"}, "'top' must be a whole number"),
        ({"size": -1}, "'size' must be more than 0"),
        ({"quote": "U$D"}, "'quote' is invalid"),
        ({"limit": 5}, "unknown argument 'limit' (known: quote, top, size)"),
        ({"quote": "EUR"}, "unknown quote 'EUR'"),
    ],
)
async def test_bad_arguments_are_refused_in_one_sentence(
    facade: EngineFacade, mode: str, args: dict[str, object], says: str
) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        result = await client.call_tool("scan_markets", args)
    text = text_of(result)
    assert result.is_error and "\n" not in text and "Traceback" not in text
    assert says in text, text


@asynccontextmanager
async def remote_engine(db: Path) -> AsyncIterator[tuple[EngineFacade, RemoteFacade]]:
    engine = Engine.from_config(paper_config(), db, options=RunOptions(max_events=WARM_EVENTS, keep_alive=True))
    async with engine.serve() as local:
        with anyio.fail_after(30):
            await engine.done.wait()
        owner = StateLock.holder(db)
        assert owner is not None and owner.control is not None
        async with RemoteFacade.connect(Path(owner.control)) as remote:
            yield local, remote


async def test_the_scan_reaches_an_engine_through_its_control_socket(tmp_path: Path) -> None:
    async with remote_engine(tmp_path / "m.db") as (local, remote):
        here = await local.markets(quote="any", top=3, size=250.5)
        there = await remote.markets(quote="any", top=3, size=250.5)
        assert there == here and there.size_usd == 250.5
        with pytest.raises(InvalidRequest, match="unknown quote 'EUR'"):
            await remote.markets(quote="EUR")
        async with Client(build_server(remote)) as client:
            through = MarketsView.model_validate(ok(await client.call_tool("scan_markets", {"quote": "any"})))
    assert through.pairs[0].pair == here.pairs[0].pair and through.pairs[0].atr_pct == here.pairs[0].atr_pct
