"""Fixtures for the MCP tests: a real engine (paper, in-memory DB, the shipped sample) and both protocol eras."""

from collections.abc import AsyncIterator

import pytest
from mcp_harness import running_engine

from engine.runtime.facade import EngineFacade

# "auto" connects an in-process server at 2026-07-28 (no handshake); "legacy" does the 2025-11-25 handshake.
MODES = ("auto", "legacy")


@pytest.fixture
async def facade() -> AsyncIterator[EngineFacade]:
    """A running paper engine that replayed a few candles and then holds still (so state can be compared)."""
    async with running_engine() as (_engine, running):
        yield running


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """The client's connection mode."""
    return str(request.param)
