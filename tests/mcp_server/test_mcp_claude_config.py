"""The Claude Desktop example config names both ways in: ``serve`` (stdio) and ``attach`` (bridge to HTTP)."""

import json
import shutil
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

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


@pytest.mark.anyio
async def test_the_serve_entry_works_pasted_as_is_from_any_folder_with_a_bare_environment(tmp_path: Path) -> None:
    # As an MCP host starts it: the entry's command and args unchanged, from a folder of its own (the host's, often
    # /), with only PATH and HOME. The state goes to the user's data folder (XDG's default on Linux), not the cwd.
    entry = next(
        e
        for e in json.loads((REPO / "claude_config.example.json").read_text())["mcpServers"].values()
        if e["args"][0] == "serve"
    )
    user, elsewhere = tmp_path / "user", tmp_path / "host-cwd"
    elsewhere.mkdir()
    command = shutil.which(entry["command"], path=str(Path(sys.executable).parent))
    assert command is not None, "trading-mcp is installed beside this Python"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(user), **entry["env"]}
    params = StdioServerParameters(command=command, args=entry["args"], env=env, cwd=elsewhere)
    with anyio.fail_after(60):
        async with Client(params, mode="legacy") as client:
            status = (await client.call_tool("get_status", {})).structured_content or {}
    assert status["mode"] == "paper"
    assert (user / ".local" / "share" / "trading-mcp" / "engine.db").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing written where the host started it


@pytest.mark.parametrize("command", ["serve", "run"])
def test_an_unusable_state_folder_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main([command, "--db", str(blocker / "engine.db"), "--speed", "max"]) == 2
    err = capsys.readouterr().err
    # The OS's words ("Not a directory", "File exists") and the path: one line, no traceback.
    assert err.startswith(f"trading-mcp {command}: ") and str(blocker) in err and err.count("\n") == 1
