"""Secrets never reach an output: an upstream that echoes the signed request (key and signature) in its error, and
a secret pasted into a client's free text, are masked before anything is printed or recorded."""

import base64
import logging
from pathlib import Path

import anyio
import pytest
from fakes.kraken_fake import TEST_KEY, TEST_SECRET, FakeKraken

from engine.redaction import Redactor
from engine.runtime.cli import main
from engine.runtime.config import config_from_mapping
from engine.runtime.live import kraken_check, render_check

pytestmark = pytest.mark.anyio
ENV = {"KRAKEN_API_KEY": TEST_KEY, "KRAKEN_API_SECRET": TEST_SECRET}
SIGNATURE = base64.b64encode(bytes(range(64))).decode()  # what an API-Sign header looks like: 88 characters


def echo(endpoint: str = "*") -> str:
    """An upstream's error that repeats the request it refused."""
    return f"EGeneral:Internal error; request {endpoint} API-Key: {TEST_KEY} API-Sign: {SIGNATURE} nonce 17"


def test_credential_like_runs_in_foreign_text_are_masked_and_ordinary_text_is_not() -> None:
    redactor = Redactor(["s3cret-value-1"])
    assert redactor.foreign(f"x s3cret-value-1 {SIGNATURE} y") == "x [redacted] [redacted] y"
    ordinary = "order t-000000001 OQCLML-BW3P3-BUCMWZ on BTC/USD: /tmp/pytest-of-root/pytest-1/test0/e.db"
    assert redactor.foreign(ordinary) == ordinary


async def test_kraken_check_never_repeats_an_echoed_key_or_signature(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeKraken() as fake:
        # Twice each: the check retries once.
        fake.faults.errors["Balance"] = [echo("Balance")] * 2
        fake.faults.errors["GetWebSocketsToken"] = [echo("GetWebSocketsToken")] * 2
        config = config_from_mapping({"strategies": [], "kraken": {"rest_url": fake.rest_url, "tier": "pro"}})
        with anyio.fail_after(10):
            report = await kraken_check(config, env=ENV)
    text = render_check(report)
    assert report.balance_ok is False and "EGeneral:Internal error" in report.balance_detail
    assert any("EGeneral:Internal error" in r.getMessage() for r in caplog.records)  # the retries were logged
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TEST_KEY, TEST_SECRET, SIGNATURE):
        assert secret not in text and secret not in str(report) and secret not in logged


async def test_run_live_prints_the_venues_error_in_one_line_without_secrets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, value in {**ENV, "TRADING_MCP_ALLOW_LIVE": "1"}.items():
        monkeypatch.setenv(name, value)
    async with FakeKraken() as fake:
        fake.faults.errors["*"] = [echo()] * 200
        config = tmp_path / "live.toml"
        config.write_text(
            'mode = "live"\nstrategies = []\n[market]\nsource = "kraken"\n'
            f'[kraken]\nrest_url = "{fake.rest_url}"\nws_public_url = "{fake.ws_public_url}"\n'
            f'ws_private_url = "{fake.ws_private_url}"\ntier = "pro"\n'
        )
        args = ["run", "--live", "--quiet", "--config", str(config), "--db", str(tmp_path / "live.db")]
        with anyio.fail_after(30):
            code = await anyio.to_thread.run_sync(main, args)
    err = capsys.readouterr().err
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert code == 2, err
    lines = err.strip().splitlines()
    # The catalogue's line (Kraken's list could not be loaded: the shipped pairs are used), the fees' line
    # (TradeVolume failed: the published schedule's first tier), then the error's.
    assert "Traceback" not in err and len(lines) == 3 and lines[0].startswith("pairs: the 8 shipped")
    assert lines[1].startswith("fees: the published schedule's first tier (TradeVolume failed")
    assert "EGeneral:Internal error" in lines[2]
    for secret in (TEST_KEY, TEST_SECRET, SIGNATURE):
        assert secret not in err and secret not in logged
