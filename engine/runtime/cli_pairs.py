"""``trading-mcp pairs``: the instruments the engine knows, with their rules; ``--refresh`` loads Kraken's list.

    trading-mcp pairs [--quote USD] [--search SOL] [--json]
    trading-mcp pairs --refresh [--config FILE]

Names are canonical (Kraken's WebSocket v2 symbol, ``BTC/USD``); Kraken's other names are shown beside them and
are accepted everywhere a pair is named.
"""

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from engine.domain.instrument import Instrument
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.market.catalog import Catalog
from engine.market.catalog_files import current_catalog, kept_path
from engine.market.pair_names import canonical_asset, compact
from engine.runtime.catalog_refresh import RefreshError, refresh_catalog
from engine.runtime.config import load_config

__all__ = ["add_pairs_parser", "cmd_pairs", "instrument_row"]


class PairsError(Exception):
    """A bad option or a failed refresh; the message is shown as is."""


def add_pairs_parser(sub: Any) -> None:
    pairs = sub.add_parser("pairs", help="list the known pairs and their rules; --refresh loads Kraken's whole list")
    pairs.add_argument("--quote", help="only pairs quoted in this asset (USD, EUR, BTC...)")
    pairs.add_argument("--search", help="only pairs whose names contain this text (any spelling: XBT finds BTC)")
    pairs.add_argument("--json", action="store_true", help="print JSON")
    pairs.add_argument("--refresh", action="store_true", help="load Kraken's AssetPairs and Assets and keep them")
    pairs.add_argument(
        "--config", type=Path, help="TOML configuration file (its [kraken] rest_url is used for --refresh)"
    )


def instrument_row(inst: Instrument) -> dict[str, Any]:
    """One pair's rules as plain values (decimals as strings)."""

    def text(value: Decimal) -> str:
        return format(value.normalize(), "f")

    return {
        "pair": inst.pair,
        "altname": inst.altname,
        "rest_name": inst.rest_name,
        "base": inst.base,
        "quote": inst.quote,
        "price_decimals": inst.pair_decimals,
        "lot_decimals": inst.lot_decimals,
        "tick_size": text(inst.tick_size),
        "ordermin": text(inst.ordermin),
        "costmin": text(inst.costmin),
        "status": inst.status,
    }


def select(catalog: Catalog, quote: str | None, search: str | None) -> list[Instrument]:
    chosen = list(catalog)
    if quote:
        wanted = canonical_asset(quote)
        chosen = [i for i in chosen if i.quote == wanted]
    if search:
        needle = compact(search)
        plain = compact(canonical_asset(search))
        chosen = [
            i
            for i in chosen
            if any(needle in compact(n) or plain in compact(n) for n in (i.pair, i.altname, i.rest_name, i.wsname) if n)
        ]
    return sorted(chosen, key=lambda i: i.pair)


def render(instruments: list[Instrument], catalog: Catalog) -> str:
    headers = ("pair", "kraken", "price dp", "lot dp", "tick", "ordermin", "costmin", "status")
    rows = [
        (r["pair"], r["altname"], str(r["price_decimals"]), str(r["lot_decimals"]), r["tick_size"], r["ordermin"],
         r["costmin"], r["status"])
        for r in map(instrument_row, instruments)
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append(f"{len(instruments)} of {len(catalog)} pairs; from {catalog.source}")
    return "\n".join(lines)


def cmd_pairs(args: argparse.Namespace) -> int:
    if args.refresh:
        config = load_config(args.config)

        async def refresh() -> Catalog:
            async with KrakenRestClient(config.kraken.rest_url, tier=config.kraken.tier) as rest:
                return await refresh_catalog(rest)

        try:
            catalog = anyio.run(refresh)
        except RefreshError as exc:
            raise PairsError(f"{exc}; nothing was changed") from None
        print(f"kept {len(catalog)} pairs in {kept_path()} ({catalog.source})")
        if not (args.quote or args.search or args.json):
            return 0
    catalog = current_catalog()
    if args.quote is not None and not args.quote.strip():
        raise PairsError("--quote needs an asset, such as USD")
    chosen = select(catalog, args.quote, args.search)
    if args.json:
        print(json.dumps({"source": catalog.source, "pairs": [instrument_row(i) for i in chosen]}, indent=1))
    else:
        print(render(chosen, catalog))
    return 0
