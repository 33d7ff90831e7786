"""``trading-mcp scan``: Kraken's pairs ranked by the opportunity scanner (see :mod:`engine.market.scanner`).

Without ``--data`` it asks Kraken (AssetPairs and Ticker once each for every pair, OHLC for the best few; the URL
from ``--config``'s ``[kraken] rest_url``); with ``--data F1 F2 ...`` it ranks replayed files, one pair each.
Bad input (an unknown quote, ``--top 0``, a size that is no number) is refused in one line, exit status 2.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import anyio

from engine.errors import InvalidRequest
from engine.exchanges.kraken.rest_client import KrakenTransportError
from engine.redaction import Redactor
from engine.runtime.config import load_config
from engine.runtime.markets_view import (
    TOP_MAX,
    KrakenMarkets,
    MarketScoreView,
    MarketsView,
    file_markets,
    scan_settings,
    scan_view,
)

__all__ = ["add_scan_parser", "cmd_scan", "render_scan"]

_WHOLE = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?")
_INTERVALS = (1, 5, 15, 30, 60, 240, 1440)


def add_scan_parser(sub: Any) -> None:
    """Add ``scan`` to the command line's sub-commands."""
    scan = sub.add_parser(
        "scan", help="rank Kraken's pairs by volume, spread, volatility, trend and liquidity at a size"
    )
    scan.add_argument("--quote", default="USD", help="rank pairs quoted in this currency, or 'any' (default USD)")
    scan.add_argument("--top", default="20", help=f"show the best N pairs, 1 to {TOP_MAX} (default 20)")
    scan.add_argument("--size", default="1000", help="order size in USD the liquidity is measured at (default 1000)")
    scan.add_argument("--data", type=Path, nargs="+", metavar="FILE", help="rank these replay files (one pair each)")
    scan.add_argument("--candles", help="fetch OHLC for the N best on the Ticker alone (default: --top; 0: none)")
    scan.add_argument("--interval", default="60", help="OHLC interval in minutes (default 60)")
    scan.add_argument("--config", type=Path, help="TOML configuration ([kraken] rest_url)")
    scan.add_argument("--json", action="store_true", help="print JSON")


def _whole(text: str, name: str, low: int, high: int) -> int:
    if not _WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def _size(text: str) -> float:
    if not _DECIMAL.fullmatch(text) or float(text) <= 0:
        raise InvalidRequest(f"--size must be a positive number of USD such as 1000 or 250.5, not {text!r}")
    return float(text)


def cmd_scan(args: argparse.Namespace) -> int:
    """Run ``trading-mcp scan``; refusals raise :class:`~engine.errors.InvalidRequest` (one line, exit 2)."""
    top = _whole(args.top, "--top", 1, TOP_MAX)
    size = _size(args.size)
    try:
        settings, top = scan_settings(args.quote, top, size)
    except InvalidRequest as exc:
        raise InvalidRequest(f"--{exc}") from None
    if args.data:
        for path in args.data:
            if not path.is_file():
                raise InvalidRequest(f"data file {path} does not exist or is not a file")
        data = file_markets(args.data)
    else:
        candles = top if args.candles is None else _whole(args.candles, "--candles", 0, TOP_MAX)
        interval = _whole(args.interval, "--interval", 1, 1440)
        if interval not in _INTERVALS:
            raise InvalidRequest(f"--interval must be one of {', '.join(map(str, _INTERVALS))} minutes, not {interval}")
        url = load_config(args.config).kraken.rest_url
        kraken = KrakenMarkets(url, interval_min=interval)
        try:
            data = anyio.run(kraken.data, settings, candles)
        except KrakenTransportError as exc:
            raise InvalidRequest(
                f"Kraken did not answer at {url} ({Redactor().foreign(str(exc))}); to rank files, use --data FILE ..."
            ) from None
    view = scan_view(data, settings, top)
    print(view.model_dump_json(indent=2) if args.json else render_scan(view))
    if not view.pairs:
        print("trading-mcp scan: no pair to rank", file=sys.stderr)
    return 0


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _row(p: MarketScoreView, usd: bool) -> str:
    volume = p.volume_24h_usd if usd else p.volume_24h_quote
    return (
        f"{p.rank:>4}  {p.pair:<14} {p.score:>6.3f} {p.coverage:>6.2f} {_num(volume, ',.0f'):>16} "
        f"{_num(p.spread_bps, '.2f'):>9} {_num(p.atr_pct, '.3f'):>8} {_num(p.trend, '.2f'):>6} "
        f"{_num(p.liquidity, '.2f'):>6} {_num(p.top_depth_usd, ',.0f'):>12}"
    )


def render_scan(view: MarketsView) -> str:
    """The scan as text: a table of the best pairs, then what each misses, what was excluded, and notes."""
    usd = view.quote in ("any", "USD")
    unit = "USD" if usd else view.quote
    quoted = "of every quote" if view.quote == "any" else f"quoted in {view.quote}"
    weights = " + ".join(f"{w:g} {name}" for name, w in view.weights.items())
    lines = [
        f"Market scan: {view.ranked} pair(s) {quoted} ranked, the best {len(view.pairs)} shown, "
        f"{len(view.excluded)} excluded; as of {view.as_of or 'unknown'}",
        f"  data: {view.source}",
        f"  score = {weights} (each a percentile among the ranked pairs); size {view.size_usd:g} USD",
        f"  {view.method['volatility']}; {view.method['trend']}",
        f"{'#':>4}  {'pair':<14} {'score':>6} {'cover':>6} {'volume 24h ' + unit:>16} {'sprd bp':>9} "
        f"{'ATR %':>8} {'trend':>6} {'fill':>6} {'depth USD':>12}",
    ]
    tier = 1
    for p in view.pairs:
        if p.tier != tier:
            tier = p.tier
            lines.append(f"  -- tier {tier}: no candles fetched, ranked after the pairs above on the Ticker alone --")
        lines.append(_row(p, usd))
    missing = [p for p in view.pairs if p.missing]
    if missing:
        lines.append("Missing (ranked on the rest):")
        lines.extend(f"  {p.pair}: {'; '.join(p.missing)}" for p in missing)
    if view.excluded:
        lines.append("Excluded:")
        lines.extend(f"  {e.pair}: {e.reason}" for e in view.excluded)
    if view.notes:
        lines.append("Notes:")
        lines.extend(f"  {n}" for n in view.notes)
    return "\n".join(lines)
