"""Shared test fixtures: the anyio backend, paths to the shared reference data (skip when absent)."""

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.mcp_harness import running_engine

from engine.runtime.facade import EngineFacade

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the repository; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared reference data is not present")
    return SHARED


# -- MCP tests: a real engine and both protocol eras --------------------------------------------------------
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


# Tests never read or write the developer's own data folder (the kept catalogue, and the default state file and
# token: engine.market.catalog_files.home): a folder of their own, and a fresh one for each test (below), so that
# no test resumes another's state.
os.environ["TRADING_MCP_HOME"] = tempfile.mkdtemp(prefix="trading-mcp-home-")


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data folder of this test (``$TRADING_MCP_HOME``): empty at its start."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TRADING_MCP_HOME", str(folder))
    return folder
