"""Where the HTTP server may listen: loopback as before; anything else only with --allow-remote, checks kept on."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.server.transport_security import TransportSecuritySettings

from engine.runtime.cli import EXIT_USAGE
from engine.runtime.facade import EngineFacade
from trading_mcp.cli import main
from trading_mcp.errors import BindRefused
from trading_mcp.http import LOOPBACK_HOSTS, LOOPBACK_ORIGINS, is_loopback, serve_http, transport_security

TOKEN = "bind-test-token-0123456789abcdef"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Authorization": f"Bearer {TOKEN}",
}


# -- the policy, pure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_binds_get_exactly_the_sdks_own_checks(host: str) -> None:
    # What MCPServer.streamable_http_app(host=...) enables by itself for these three hosts.
    assert transport_security(host) == TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def test_another_loopback_address_is_checked_too_with_itself_allowed() -> None:
    settings = transport_security("127.0.0.2")
    assert settings.enable_dns_rebinding_protection  # the SDK would have left this one unchecked
    assert settings.allowed_hosts == [*LOOPBACK_HOSTS, "127.0.0.2:*"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "LOCALHOST", "localhost."])
def test_loopback_is_localhost_or_a_loopback_address(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.5", "desk.lan", "localhost.evil.example", "127.0.0.1.nip.io"]
)
def test_anything_else_is_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "desk.lan"])
def test_a_non_loopback_bind_needs_allow_remote(host: str) -> None:
    with pytest.raises(BindRefused, match="needs --allow-remote") as refused:
        transport_security(host, allowed_hosts=["desk.lan"])
    assert "\n" not in str(refused.value) and str(refused.value).startswith(f"{host} is not a loopback address")


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_every_interface_needs_an_explicit_allowed_host(host: str) -> None:
    with pytest.raises(BindRefused, match="needs at least one --allowed-host"):
        transport_security(host, allow_remote=True)


def test_a_remote_bind_keeps_host_and_origin_checks_with_an_explicit_allow_list() -> None:
    settings = transport_security(
        "0.0.0.0", allow_remote=True, allowed_hosts=["desk.lan", "10.0.0.7:8765"], allowed_origins=["https://desk.lan"]
    )
    assert settings.enable_dns_rebinding_protection
    assert settings.allowed_hosts == [*LOOPBACK_HOSTS, "desk.lan", "desk.lan:*", "10.0.0.7:8765"]
    assert settings.allowed_origins == [*LOOPBACK_ORIGINS, "https://desk.lan"]


@pytest.mark.parametrize(("host", "allowed"), [("192.168.1.5", "192.168.1.5:*"), ("fe80::1", "[fe80::1]:*")])
def test_a_specific_remote_address_allows_itself(host: str, allowed: str) -> None:
    settings = transport_security(host, allow_remote=True)
    assert settings.enable_dns_rebinding_protection and allowed in settings.allowed_hosts


@pytest.mark.parametrize("entry", ["*", "", "desk lan", "http://desk.lan", "fe80::1", "desk.lan:port", "a/b"])
def test_a_malformed_allowed_host_is_refused(entry: str) -> None:
    with pytest.raises(BindRefused, match="is not HOST, HOST:PORT or HOST:"):
        transport_security("127.0.0.1", allowed_hosts=[entry])


@pytest.mark.parametrize("entry", ["*", "desk.lan", "ftp://desk.lan", "https://", "https://desk.lan/path"])
def test_a_malformed_allowed_origin_is_refused(entry: str) -> None:
    with pytest.raises(BindRefused, match="allowed origin"):
        transport_security("127.0.0.1", allowed_origins=[entry])


# -- a real server on every interface -----------------------------------------------------------------------


@asynccontextmanager
async def served(
    facade: EngineFacade,
    host: str,
    *,
    allow_remote: bool = False,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
) -> AsyncIterator[int]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(20):
            url: str = await tg.start(
                lambda task_status: serve_http(
                    facade,
                    host,
                    0,
                    TOKEN,
                    allow_remote=allow_remote,
                    allowed_hosts=allowed_hosts,
                    allowed_origins=allowed_origins,
                    task_status=task_status,
                )
            )
        yield int(url.rsplit(":", 1)[1].split("/")[0])
        tg.cancel_scope.cancel()


async def post(port: int, **headers: str) -> int:
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(20):
            response = await http.post(f"http://127.0.0.1:{port}/mcp", json=INIT, headers={**HEADERS, **headers})
    return response.status_code


@pytest.mark.anyio
async def test_serving_every_interface_keeps_checking_host_and_origin(facade: EngineFacade) -> None:
    async with served(
        facade, "0.0.0.0", allow_remote=True, allowed_hosts=["desk.test"], allowed_origins=["https://desk.test"]
    ) as port:
        assert await post(port) == 200  # Host 127.0.0.1:PORT: a local client (the attach bridge)
        assert await post(port, Host=f"desk.test:{port}") == 200
        assert await post(port, Host=f"desk.test:{port}", Origin="https://desk.test") == 200
        assert await post(port, Host=f"evil.example:{port}") == 421  # DNS rebinding through another name
        assert await post(port, Host=f"desk.test:{port}", Origin="https://evil.example") == 403
        assert await post(port, Host=f"desk.test:{port}", Origin="http://desk.test") == 403
        assert await post(port, Host=f"desk.test:{port}", Authorization="Bearer wrong") == 401


@pytest.mark.anyio
async def test_serve_http_refuses_a_remote_bind_before_binding_anything(facade: EngineFacade) -> None:
    with anyio.fail_after(20), pytest.raises(BindRefused, match="needs --allow-remote"):
        await serve_http(facade, "0.0.0.0", 0, TOKEN)


@pytest.mark.anyio
async def test_a_loopback_server_still_refuses_foreign_hosts_and_origins(facade: EngineFacade) -> None:
    async with served(facade, "127.0.0.1") as port:
        assert await post(port) == 200
        assert await post(port, Host=f"localhost:{port}", Origin=f"http://localhost:{port}") == 200
        assert await post(port, Host=f"evil.example:{port}") == 421
        assert await post(port, Origin="https://evil.example") == 403


# -- the command line ---------------------------------------------------------------------------------------


def run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["run", "--speed", "max", "--quiet", "--db", str(tmp_path / "e.db"), *args])
    err = capsys.readouterr().err
    assert not (tmp_path / "e.db").exists(), "the engine must not start"
    return code, err


def test_cli_refuses_a_non_loopback_bind_without_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(tmp_path, capsys, "--mcp-http", "0.0.0.0:8765")
    assert code == EXIT_USAGE
    assert err == (
        "trading-mcp run: 0.0.0.0 is not a loopback address: serving MCP beyond this machine needs --allow-remote "
        "(and --allowed-host for each name clients use to reach it)\n"
    )
    assert not (tmp_path / "trading_data").exists()  # not even a token file


def test_cli_refuses_every_interface_without_an_allowed_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(tmp_path, capsys, "--mcp-http", "[::]:8765", "--allow-remote")
    assert code == EXIT_USAGE and err.count("\n") == 1
    assert "needs at least one --allowed-host" in err


def test_cli_remote_flags_need_mcp_http(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path, capsys, "--allow-remote")
    assert code == EXIT_USAGE and "only apply with --mcp-http" in err and err.count("\n") == 1


def test_cli_reads_allowed_hosts_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text('[mcp]\nallowed_hosts = ["desk lan"]\n', encoding="utf-8")
    code, err = run_cli(tmp_path, capsys, "--config", str(config), "--mcp-http", "127.0.0.1:8765")
    assert code == EXIT_USAGE and "allowed host 'desk lan' is not HOST" in err and err.count("\n") == 1
