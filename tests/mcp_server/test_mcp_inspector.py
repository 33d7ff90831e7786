"""A client we did not write: the MCP Inspector CLI (2025-11-25, no elicitation) against ``trading-mcp serve``.

Needs ``node`` and ``npm``; the Inspector is installed once into a throwaway folder under the temp dir (or taken
from ``TRADING_MCP_INSPECTOR_DIR``). Skipped when node is missing or the install fails (no network).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = "2.12.0"


@pytest.fixture(scope="module")
def inspector() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed")
    folder = Path(os.environ.get("TRADING_MCP_INSPECTOR_DIR", Path(tempfile.gettempdir()) / f"mcp-inspector-{VERSION}"))
    binary = folder / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", f"@modelcontextprotocol/inspector@{VERSION}"],
                cwd=folder,
                capture_output=True,
                timeout=300,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot install the MCP Inspector (offline?): {type(exc).__name__}")
    if not binary.exists():
        pytest.skip("the MCP Inspector install produced no binary")
    return binary


def run(inspector: Path, db: Path, *method: str) -> tuple[int, dict[str, Any]]:
    server = [sys.executable, "-m", "trading_mcp", "serve", "--db", str(db), "--speed", "max"]
    completed = subprocess.run(
        [str(inspector), "--cli", "--format", "json", *method, "--", *server],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert completed.stdout.strip(), completed.stderr[-2000:]
    return completed.returncode, json.loads(completed.stdout)


def test_inspector_lists_tools_and_resources(inspector: Path, tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    code, tools = run(inspector, db, "--method", "tools/list")
    assert code == 0
    names = {t["name"] for t in tools["result"]["tools"]}
    assert {"get_status", "tune_strategy", "emergency_stop", "diagnose_system"} <= names
    code, resources = run(inspector, db, "--method", "resources/list")
    assert code == 0
    assert "bot://status" in {r["uri"] for r in resources["result"]["resources"]}
    code, templates = run(inspector, db, "--method", "resources/templates/list")
    assert code == 0
    assert "bot://market/{pair}" in {t["uriTemplate"] for t in templates["result"]["resourceTemplates"]}


def test_inspector_calls_get_status_and_previews_a_tuning(inspector: Path, tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    code, status = run(inspector, db, "--method", "tools/call", "--tool-name", "get_status")
    assert code == 0 and status["result"]["structuredContent"]["mode"] == "paper"
    args = json.dumps({"name": "ema_cross", "params": {"fast": 10}, "preview": True})
    code, tuned = run(inspector, db, "--method", "tools/call", "--tool-name", "tune_strategy", "--tool-args-json", args)
    assert code == 0
    assert tuned["result"]["structuredContent"]["applied"] is False
    assert tuned["result"]["structuredContent"]["changes"] == [{"name": "fast", "before": "12", "after": "10"}]


def test_inspector_gets_a_token_for_emergency_stop_and_errors_for_bad_input(inspector: Path, tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    code, stop = run(inspector, db, "--method", "tools/call", "--tool-name", "emergency_stop")
    assert code == 0
    assert stop["result"]["structuredContent"]["status"] == "confirmation_required"
    bad = json.dumps({"name": "nope", "params": {"fast": 10}})
    code, refused = run(
        inspector, db, "--method", "tools/call", "--tool-name", "tune_strategy", "--tool-args-json", bad
    )
    assert code in (0, 5)
    assert refused["result"]["isError"] is True
