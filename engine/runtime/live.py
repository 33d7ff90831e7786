"""Engines on Kraken's live feed, and the ``kraken-check`` connectivity report.

* ``--market kraken``: :class:`KrakenMarketSource` + the paper venue (fills simulated against the live book), on
  the wall clock.
* ``--live``: :class:`KrakenMarketSource` + :class:`KrakenExchange` (keys from ``KRAKEN_API_KEY`` /
  ``KRAKEN_API_SECRET``), on the wall clock.

:func:`kraken_check` asks Kraken (or the configured fake) what an operator needs to know before trading:
reachable, system status, clock skew, key permissions, and the configured pairs' instruments.
"""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from engine.domain.instrument import Instrument
from engine.exchanges.catalog import default_instruments
from engine.exchanges.kraken.adapter import KrakenExchange
from engine.exchanges.kraken.backoff import Backoff
from engine.exchanges.kraken.market_feed import KrakenMarketSource
from engine.exchanges.kraken.protocol.errors import KrakenError
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.kraken.ws_link import DEFAULT_WS_SETTINGS, WsSettings
from engine.exchanges.port import ExchangePort
from engine.market.catalog_files import current_catalog
from engine.redaction import Redactor
from engine.runtime.app import Engine, EngineError, RunOptions
from engine.runtime.config import Config

__all__ = [
    "KrakenCheckReport",
    "build_kraken_engine",
    "describe_kraken_error",
    "kraken_check",
    "render_check",
    "traded_pairs",
]

KEY_ENV = "KRAKEN_API_KEY"
SECRET_ENV = "KRAKEN_API_SECRET"
SKEW_WARN_S = 5.0
CHECK_RETRY = Backoff(initial=0.5, factor=2.0, cap=1.0, max_attempts=1)


def traded_pairs(config: Config) -> list[str]:
    """The pairs the feed must carry: every strategy's pair, else the configured market pair."""
    pairs = sorted({p for s in config.strategies for p in s.traded_pairs})
    return pairs or [config.market.pair]


def build_kraken_engine(
    config: Config,
    db: Path | None,
    options: RunOptions,
    *,
    env: Mapping[str, str] | None = None,
    instruments: Mapping[str, Instrument] | None = None,
    ws_settings: WsSettings = DEFAULT_WS_SETTINGS,
) -> Engine:
    """An engine on Kraken's public feed: paper venue, or the live venue when ``config.mode == "live"``.

    Args:
        config: the configuration (``kraken`` section: URLs, tier, depth, interval, dead man's switch).
        db: the SQLite state file.
        options: run options.
        env: where the keys are read from (default: the process environment).
        instruments: the instruments (default: the shipped ones; the feed's instrument channel supplies the
            precisions it checks books with).
        ws_settings: WebSocket timings (ping, watchdog, request timeout, reconnect backoff).

    Raises:
        EngineError: a traded pair is unknown, or live trading lacks keys.
    """
    environ = os.environ if env is None else env
    known = dict(instruments or default_instruments())
    pairs = traded_pairs(config)
    missing = [p for p in pairs if p not in known]
    if missing:
        raise EngineError(f"no instrument for {', '.join(missing)} (known: {', '.join(sorted(known))})")
    k = config.kraken
    source = KrakenMarketSource(
        k.ws_public_url,
        {p: known[p] for p in pairs},
        book_depth=k.book_depth,
        ohlc_interval=k.ohlc_interval,
        settings=ws_settings,
        candle_grace_s=k.candle_grace_s,
    )
    if config.mode != "live":
        return Engine(config, db, source, instruments=known, options=options, live_clock=True)
    key, secret = environ.get(KEY_ENV), environ.get(SECRET_ENV)
    if not key or not secret:
        raise EngineError(f"live trading needs {KEY_ENV} and {SECRET_ENV} in the environment")

    def factory(
        venue_instruments: Mapping[str, Instrument], balances: Mapping[str, Decimal], clock: Callable[[], int]
    ) -> ExchangePort:
        rest = KrakenRestClient(k.rest_url, api_key=key, api_secret=secret, tier=k.tier)
        return KrakenExchange(
            rest,
            venue_instruments,
            ws_private_url=k.ws_private_url,
            settings=ws_settings,
            dead_man_switch_s=k.dead_man_switch_s,
            dead_man_interval_s=max(5.0, k.dead_man_switch_s / 3),
            clock_ns=clock,
        )

    return Engine(config, db, source, instruments=known, exchange_factory=factory, options=options, live_clock=True)


@dataclass
class KrakenCheckReport:
    """What :func:`kraken_check` found; ``problems`` is empty when everything is fine."""

    rest_url: str
    reachable: bool = False
    system_status: str | None = None
    server_time_s: int | None = None
    clock_skew_s: float | None = None
    keys_present: bool = False
    balance_ok: bool | None = None
    balance_detail: str = ""
    ws_token_ok: bool | None = None
    ws_token_detail: str = ""
    instruments: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def describe_kraken_error(error: KrakenError, redactor: Redactor | None = None) -> str:
    """Kraken's error text for a person, with anything that looks like a credential masked: an upstream (a proxy,
    a gateway) may echo the signed request, key and signature included, in its error."""
    text = ", ".join(error.errors) if error.errors else str(error)
    return (redactor or Redactor()).foreign(text)


async def kraken_check(
    config: Config,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
    retry: Backoff = CHECK_RETRY,
) -> KrakenCheckReport:
    """Check connectivity, status, clock skew, key permissions and the configured pairs (never trades).

    A check retries once (``retry``): an operator wants a quick answer, not a patient client.
    """
    environ = os.environ if env is None else env
    key, secret = environ.get(KEY_ENV), environ.get(SECRET_ENV)
    redactor = Redactor([value for value in (key, secret) if value])
    report = KrakenCheckReport(config.kraken.rest_url, keys_present=bool(key and secret))
    async with KrakenRestClient(
        config.kraken.rest_url,
        api_key=key,
        api_secret=secret,
        tier=config.kraken.tier,
        transport=transport,
        timeout_s=10.0,
        retry=retry,
    ) as rest:
        try:
            before = clock_ns()
            server = await rest.server_time()
            after = clock_ns()
            report.reachable = True
            report.server_time_s = server.unixtime
            report.clock_skew_s = server.unixtime - (before + after) / 2 / 1e9
            report.system_status = (await rest.system_status()).status
        except KrakenError as exc:
            report.problems.append(f"Kraken REST unreachable: {describe_kraken_error(exc, redactor)}")
            return report
        if report.system_status != "online":
            report.problems.append(f"Kraken system status is {report.system_status}")
        if report.clock_skew_s is not None and abs(report.clock_skew_s) > SKEW_WARN_S:
            report.problems.append(f"local clock is {report.clock_skew_s:+.1f}s off Kraken's")
        await _check_pairs(rest, config, report, redactor)
        if report.keys_present:
            await _check_keys(rest, report, redactor)
    return report


async def _check_pairs(rest: KrakenRestClient, config: Config, report: KrakenCheckReport, redactor: Redactor) -> None:
    pairs = traded_pairs(config)
    shipped = default_instruments()
    # Kraken's REST API takes its own names (the altname XBTUSD), not the engine's (BTC/USD).
    asked = [shipped[p].rest_pair if p in shipped else p.replace("/", "") for p in pairs]
    try:
        found = await rest.asset_pairs(asked)
    except KrakenError as exc:
        report.problems.append(f"AssetPairs for {', '.join(pairs)} failed: {describe_kraken_error(exc, redactor)}")
        return
    for pair in pairs:
        inst = found.get(pair)
        if inst is None:
            report.instruments[pair] = "unknown at Kraken"
            report.problems.append(f"pair {pair} is unknown at Kraken")
            continue
        detail = (
            f"{inst.ws_symbol} status {inst.status}, price decimals {inst.pair_decimals}, lot decimals "
            f"{inst.lot_decimals}, ordermin {inst.ordermin}, costmin {inst.costmin}"
        )
        local = shipped.get(pair)
        if local is not None and (local.pair_decimals, local.lot_decimals, local.ordermin) != (
            inst.pair_decimals,
            inst.lot_decimals,
            inst.ordermin,
        ):
            detail += " (differs from the catalogue in use: `trading-mcp pairs --refresh` updates it)"
            report.problems.append(
                f"pair {pair}: Kraken's precision or minimum differs from the catalogue in use "
                f"({current_catalog().source})"
            )
        if inst.status != "online":
            report.problems.append(f"pair {pair} is {inst.status}")
        report.instruments[pair] = detail


async def _check_keys(rest: KrakenRestClient, report: KrakenCheckReport, redactor: Redactor) -> None:
    try:
        balances = await rest.balance()
    except KrakenError as exc:
        report.balance_ok = False
        report.balance_detail = describe_kraken_error(exc, redactor)
        report.problems.append(f"Balance with the API key failed: {report.balance_detail}")
    else:
        report.balance_ok = True
        report.balance_detail = ", ".join(f"{a} {v}" for a, v in sorted(balances.items()) if v) or "all zero"
    try:
        token = await rest.ws_token()
    except KrakenError as exc:
        report.ws_token_ok = False
        report.ws_token_detail = describe_kraken_error(exc, redactor)
        report.problems.append(f"GetWebSocketsToken failed (WebSocket permission?): {report.ws_token_detail}")
    else:
        report.ws_token_ok = True
        report.ws_token_detail = f"token valid for {token.expires_s}s"


def render_check(report: KrakenCheckReport) -> str:
    """The report as text for the terminal."""

    def mark(ok: bool | None) -> str:
        return "n/a" if ok is None else ("ok" if ok else "FAILED")

    lines = [f"Kraken check against {report.rest_url}"]
    lines.append(f"  reachable: {mark(report.reachable)}")
    if report.reachable:
        lines.append(f"  system status: {report.system_status}")
        if report.clock_skew_s is not None:
            lines.append(f"  clock skew: {report.clock_skew_s:+.1f}s (Kraken's time has 1 s resolution)")
    if not report.keys_present:
        lines.append(f"  API keys: not set ({KEY_ENV}, {SECRET_ENV}); private checks skipped")
    else:
        lines.append(f"  Balance (query funds permission): {mark(report.balance_ok)} {report.balance_detail}")
        lines.append(
            f"  GetWebSocketsToken (WebSocket permission): {mark(report.ws_token_ok)} {report.ws_token_detail}"
        )
    for pair, detail in report.instruments.items():
        lines.append(f"  {pair}: {detail}")
    if report.problems:
        lines.append("problems:")
        lines.extend(f"  - {p}" for p in report.problems)
    else:
        lines.append("no problems found")
    return "\n".join(lines)
