"""Refreshing the catalogue from (the fake) Kraken: a large AssetPairs kept whole, fallbacks said in one line."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from fakes.kraken_fake import FakeKraken, real_pairs
from fakes.kraken_fake_clients import rest_client
from fakes.kraken_fake_market import FakePair

from engine.market.catalog_files import current_catalog, kept_path
from engine.runtime.catalog_refresh import RefreshError, choose_catalog, refresh_catalog
from engine.runtime.cli import main

pytestmark = pytest.mark.anyio
DATA = Path(__file__).resolve().parents[2] / "engine" / "data"


def many_pairs(count: int) -> list[FakePair]:
    """``count`` made-up pairs in Kraken's real AssetPairs format (the shape of the SOLUSD entry), plus the
    real shipped ones."""
    template = json.loads((DATA / "instruments.json").read_text(), parse_float=Decimal)["SOLUSD"]
    made = []
    for i in range(count):
        base = f"T{i:04d}"
        info: dict[str, Any] = {**template, "altname": f"{base}USD", "wsname": f"{base}/USD", "base": base}
        info["ordermin"] = str(i + 1)
        if i % 50 == 0:
            info["status"] = "cancel_only"
        made.append(FakePair.from_asset_pairs(f"{base}USD", info))
    return [*real_pairs(), *made]


@pytest.fixture(autouse=True)
def no_kept_copy() -> Any:
    kept_path().unlink(missing_ok=True)
    yield
    kept_path().unlink(missing_ok=True)


async def test_a_large_asset_pairs_is_kept_whole_and_every_pair_resolves() -> None:
    async with FakeKraken(pairs=many_pairs(600)) as fake, rest_client(fake) as rest:
        with anyio.fail_after(20):
            catalog = await refresh_catalog(rest)
    assert len(catalog) == 608 and kept_path().is_file()
    assert catalog.resolve("t0123-usd").ordermin == Decimal(124)
    assert catalog.resolve("T0150USD").status == "cancel_only"
    assert catalog.resolve("xbtusd").pair == "BTC/USD"
    assert "Kraken AssetPairs of" in catalog.source and current_catalog() is catalog
    kept = json.loads(kept_path().read_text())
    assert len(kept["asset_pairs"]) == 608 and kept["assets"]["XXBT"]["altname"] == "XBT"


async def test_a_run_falls_back_to_the_kept_copy_then_to_the_shipped_file_and_says_so() -> None:
    async with FakeKraken(pairs=many_pairs(3)) as fake, rest_client(fake) as rest:
        with anyio.fail_after(20):
            fresh = await choose_catalog(rest)
            assert "just refreshed" in fresh.note and len(fresh.catalog) == 11
            fake.faults.http_status["AssetPairs"] = [503] * 50
            kept = await choose_catalog(rest)
    assert "the kept copy" in kept.note and "AssetPairs could not be loaded" in kept.note
    assert kept.catalog.resolve("T0001USD").pair == "T0001/USD" and "\n" not in kept.note
    kept_path().unlink()
    async with FakeKraken() as fake, rest_client(fake) as rest:
        fake.faults.http_status["AssetPairs"] = [503] * 50
        with anyio.fail_after(20):
            shipped = await choose_catalog(rest)
    assert "shipped with the engine" in shipped.note and shipped.catalog.source == "shipped with the engine"


async def test_a_malformed_entry_keeps_nothing() -> None:
    async with FakeKraken(pairs=real_pairs()) as fake, rest_client(fake) as rest:
        fake.captures["AssetPairs"] = json.dumps(
            {"error": [], "result": {"XXBTZUSD": {"altname": "XBTUSD", "base": "XXBT", "quote": "ZUSD"}}}
        ).encode()
        with anyio.fail_after(20), pytest.raises(RefreshError, match="malformed"):
            await refresh_catalog(rest)
    assert not kept_path().exists() and current_catalog().source == "shipped with the engine"


async def test_the_pairs_command_refreshes_lists_and_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeKraken(pairs=many_pairs(40)) as fake:
        config = tmp_path / "c.toml"
        config.write_text(f'[kraken]\nrest_url = "{fake.rest_url}"\n')
        with anyio.fail_after(30):
            code = await anyio.to_thread.run_sync(main, ["pairs", "--refresh", "--config", str(config)])
    assert code == 0
    assert f"kept 48 pairs in {kept_path()}" in capsys.readouterr().out
    assert main(["pairs", "--search", "xbt", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["pair"] for p in listed["pairs"]] == ["BTC/USD", "BTC/USDT", "ETH/BTC"]
    assert main(["pairs", "--quote", "eur"]) == 0
    text = capsys.readouterr().out
    assert "0G/EUR" in text and "ACA/EUR" in text and "cancel_only" in text and "BTC/USD" not in text
    assert "2 of 48 pairs" in text
