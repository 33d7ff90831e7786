"""A live account's fee rates from Kraken's private TradeVolume (the official example and the fake venue)."""

import json
from decimal import Decimal

import anyio
import pytest
from fakes.kraken_fake import FakeKraken, real_pairs
from fakes.kraken_fake_clients import rest_client

from engine.exchanges.catalog import default_instruments
from engine.exchanges.kraken.protocol.rest_account import parse_trade_volume
from engine.runtime.live_fees import account_fees

pytestmark = pytest.mark.anyio

# Kraken's OpenAPI example (openapi-spot-rest/examples/responses/user/trades/volume.yaml), as JSON.
OFFICIAL = {
    "error": [],
    "result": {
        "currency": "ZUSD",
        "volume": "3015012348193.4134",
        "fees": {"XETCXETH": {"fee": "0.1000", "minfee": "0.1000", "maxfee": "0.2600", "tiervolume": "10000000.0000"}},
        "fees_maker": {
            "XETCXETH": {"fee": "0.0000", "minfee": "0.0000", "maxfee": "0.1600", "tiervolume": "10000000.0000"}
        },
    },
}


def test_the_official_example_parses() -> None:
    parsed = parse_trade_volume(json.dumps(OFFICIAL))
    assert parsed.volume == Decimal("3015012348193.4134")
    assert parsed.fees == {"XETCXETH": Decimal("0.1000")} and parsed.fees_maker == {"XETCXETH": Decimal("0.0000")}


async def test_a_live_account_is_charged_its_own_tier_and_a_failure_says_so() -> None:
    instruments = default_instruments()
    async with FakeKraken(pairs=real_pairs()) as fake, rest_client(fake) as rest:
        fake.fee_volume = "60000"  # type: ignore[attr-defined]  # the account's 30-day volume: the third tier
        with anyio.fail_after(10):
            updated, note = await account_fees(rest, instruments, ["BTC/USD", "ETH/USD"])
        assert updated["BTC/USD"].fee_rate(maker=False) == Decimal("0.0024")
        assert updated["BTC/USD"].fee_rate(maker=True) == Decimal("0.0014")
        # The fake answers from each pair's own arrays: the ETH/USD capture carries one tier (0.40 / 0.25).
        assert updated["ETH/USD"].fee_rate(maker=True) == Decimal("0.0025")
        assert updated["SOL/USD"] == instruments["SOL/USD"]  # not traded: untouched
        assert "BTC/USD 0.2400% taker / 0.1400% maker" in note and "60000 USD" in note
        fake.faults.errors["TradeVolume"] = ["EGeneral:Internal error"] * 10
        with anyio.fail_after(10):
            unchanged, failed = await account_fees(rest, instruments, ["BTC/USD"])
    assert unchanged == instruments and "TradeVolume failed" in failed and "\n" not in failed
