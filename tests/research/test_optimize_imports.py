"""``trading-mcp optimize`` and ``backtest`` run without the MCP SDK, and Optuna loads only when a search runs."""

import json
import subprocess
import sys
from pathlib import Path

from research.optimize_data import SAMPLE

PROBE = """
import json, sys
from trading_mcp.cli import main
loaded_at_start = sorted(m for m in ("optuna", "mcp", "engine.research.search") if m in sys.modules)
code = main(sys.argv[1:])
mcp = sorted(m for m in sys.modules if m == "mcp" or m.startswith("mcp."))
print(json.dumps({"code": code, "at_start": loaded_at_start, "mcp": mcp, "optuna": "optuna" in sys.modules}))
"""


def _probe(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_optimize_and_backtest_never_import_the_mcp_sdk(tmp_path: Path) -> None:
    common = ["--data", str(SAMPLE), "--pair", "XBTUSDT", "--strategy", "ema_cross"]
    optimize = _probe("optimize", *common, "--param", "fast=2:9", "--trials", "2", "--db", str(tmp_path / "r.db"))
    assert optimize == {"code": 0, "at_start": [], "mcp": [], "optuna": True}
    backtest = _probe("backtest", *common, "--no-progress")
    assert backtest == {"code": 0, "at_start": [], "mcp": [], "optuna": False}
