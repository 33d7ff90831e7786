"""``kraken_check``: connectivity, status, clock skew, key permissions and instruments, against the fake."""

from decimal import Decimal

import anyio
import pytest
from fakes.kraken_fake import TEST_KEY, TEST_SECRET, FakeKraken, real_pairs

from engine.exchanges.kraken.backoff import Backoff
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.live import kraken_check, render_check

pytestmark = pytest.mark.anyio
ENV = {"KRAKEN_API_KEY": TEST_KEY, "KRAKEN_API_SECRET": TEST_SECRET}


def config(fake: FakeKraken, pair: str = "XBTUSD") -> Config:
    return config_from_mapping(
        {
            "strategies": [],
            "market": {"pair": pair},
            "kraken": {"rest_url": fake.rest_url, "ws_public_url": fake.ws_public_url, "tier": "pro"},
        }
    )


async def test_a_healthy_venue_with_good_keys_has_no_problems() -> None:
    async with FakeKraken(balances={"USD": Decimal(12)}, pairs=real_pairs()) as fake:
        with anyio.fail_after(10):
            report = await kraken_check(config(fake), env=ENV)
    assert report.ok and report.reachable and report.system_status == "online"
    assert report.balance_ok and report.balance_detail == "USD 12" and report.ws_token_ok
    assert report.clock_skew_s is not None and abs(report.clock_skew_s) < 2
    assert "BTC/USD status online" in report.instruments["BTC/USD"]
    text = render_check(report)
    assert "no problems found" in text and TEST_SECRET not in text and TEST_KEY not in text


async def test_problems_are_named_status_skew_keys_and_pairs() -> None:
    wrong = {**ENV, "KRAKEN_API_SECRET": "d3Jvbmctc2VjcmV0LWZvci10aGUtdGVzdHMtb25seS0wMTIzNDU2Nzg5"}
    async with FakeKraken() as fake:
        fake.system_status = "maintenance"
        fake.server_skew_s = 30
        with anyio.fail_after(10):
            report = await kraken_check(config(fake, pair="DOGEUSD"), env=wrong)
    assert not report.ok
    assert report.balance_ok is False and report.balance_detail == "EAPI:Invalid signature"
    assert report.ws_token_ok is False
    problems = "\n".join(report.problems)
    assert "maintenance" in problems and "clock" in problems and "DOGE/USD" in problems
    assert "FAILED" in render_check(report)


async def test_without_keys_private_checks_are_skipped_and_an_unreachable_venue_is_reported() -> None:
    async with FakeKraken(pairs=real_pairs()) as fake:
        with anyio.fail_after(10):
            report = await kraken_check(config(fake), env={})
        fake.faults.http_status["*"] = [503] * 50
        with anyio.fail_after(10):
            down = await kraken_check(config(fake), env={}, retry=Backoff(0.01, 2.0, 0.02, max_attempts=1))
    assert report.ok and not report.keys_present and report.balance_ok is None
    assert "private checks skipped" in render_check(report)
    assert not down.reachable and "unreachable" in down.problems[0]
