"""The Claude Desktop example config names both ways in: ``serve`` (stdio) and ``attach`` (bridge to HTTP)."""

import json
from pathlib import Path

import pytest

from trading_mcp.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_example_config_has_serve_and_attach_entries() -> None:
    config = json.loads((REPO / "claude_config.example.json").read_text(encoding="utf-8"))
    servers = config["mcpServers"]
    commands = {name: [entry["command"], *entry["args"]] for name, entry in servers.items()}
    assert any(c[:2] == ["trading-mcp", "serve"] for c in commands.values())
    attach = next(c for c in commands.values() if c[:2] == ["trading-mcp", "attach"])
    assert attach[2:] == ["--url", "http://127.0.0.1:8765/mcp"]
    assert all("TRADING_MCP_TOKEN" in e["env"] for e in servers.values() if e["args"][0] == "attach")


@pytest.mark.parametrize(("command", "option"), [("serve", "--db"), ("attach", "--url")])
def test_the_cli_knows_both_commands(capsys: pytest.CaptureFixture[str], command: str, option: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert option in capsys.readouterr().out
