"""``trading-mcp strategies``: every strategy kind this engine can run, its parameters, and the plug-ins left out.

Lists the built-in strategies and the plug-ins (the ``--config`` file's ``strategy_paths`` and the installed
packages' ``trading_mcp.strategies`` entry points, :mod:`engine.strategies.discovery`), each with its description
and its own parameters (name, type, range, default, description). The parameters every strategy has (position
guards, sizing, entry orders) are listed once, as ``common_params``. ``problems`` lists each plug-in that could not
be loaded, with its error. A configuration that is refused (a ``[[strategies]]`` entry of a kind that failed to
load, say) still gets the list, then its error on stderr and exit status 2.
"""

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.runtime.config import ConfigError, load_config
from engine.strategies.base import Param, ParamValue
from engine.strategies.common_params import COMMON_PARAMS
from engine.strategies.discovery import REGISTRY, load_entry_points, load_problems, source_of

__all__ = ["add_strategies_parser", "cmd_strategies", "render_strategies", "strategies_report"]


def add_strategies_parser(sub: Any) -> None:
    p = sub.add_parser("strategies", help="list every strategy kind (built-in and plug-ins) and its parameters")
    p.add_argument("--config", type=Path, help="TOML configuration file (its strategy_paths are loaded)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _plain(value: ParamValue | None) -> int | bool | str | None:
    return str(value) if isinstance(value, Decimal) else value


def _param(p: Param) -> dict[str, Any]:
    return {
        "name": p.name,
        "type": p.kind,
        "minimum": _plain(p.minimum),
        "maximum": _plain(p.maximum),
        "default": _plain(p.default),
        "description": p.description,
    }


def strategies_report() -> dict[str, Any]:
    """What ``--json`` prints: every registered kind (after reading the installed packages' entry points)."""
    load_entry_points()
    return {
        "strategies": [
            {
                "kind": kind,
                "description": cls.description,
                "source": source_of(kind),
                "params": [_param(p) for p in cls.own_params],
            }
            for kind, cls in sorted(REGISTRY.items())
        ],
        "common_params": [_param(p) for p in COMMON_PARAMS],
        "problems": [{"source": p.source, "error": p.error} for p in load_problems()],
    }


def _param_lines(params: list[dict[str, Any]]) -> list[str]:
    lines = []
    for p in params:
        if p["type"] == "bool":
            bounds = "true/false"
        else:
            lo = "" if p["minimum"] is None else p["minimum"]
            hi = "" if p["maximum"] is None else p["maximum"]
            bounds = f"{lo}..{hi}"
        default = str(p["default"]).lower() if p["type"] == "bool" else p["default"]
        lines.append(f"    {p['name']:<20} {p['type']:<8} {bounds:<14} default {default!s:<8} {p['description']}")
    return lines


def render_strategies(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for s in report["strategies"]:
        lines.append(f"{s['kind']} ({s['source']})")
        lines.append(f"  {s['description']}")
        lines.extend(_param_lines(s["params"]) or ["    (no parameters of its own)"])
        lines.append("")
    lines.append("Every strategy also has these (position guards, sizing, entry orders; off by default):")
    lines.extend(_param_lines(report["common_params"]))
    if report["problems"]:
        lines.append("")
        lines.append("Strategy plug-ins not loaded:")
        lines.extend(f"  {p['source']}: {p['error']}" for p in report["problems"])
    return "\n".join(lines)


def cmd_strategies(args: argparse.Namespace) -> int:
    refused: ConfigError | None = None
    if args.config is not None:
        try:
            load_config(args.config)  # loads its strategy_paths, before anything else is checked
        except ConfigError as exc:
            refused = exc
    report = strategies_report()
    print(json.dumps(report, indent=2) if args.json else render_strategies(report))
    if refused is not None:
        print(f"trading-mcp strategies: {refused}", file=sys.stderr)
        return 2
    return 0
