"""Streamable HTTP with a bearer token, served by uvicorn inside the caller's event loop.

The token comes from ``TRADING_MCP_TOKEN`` or, when that is unset, from a file under the data dir,
generated on first use and readable by the owner only (0600). Every request without the token gets 401; a
Host header other than the loopback names gets 421 (the SDK's DNS-rebinding protection when bound to a
loopback address). The token is never logged: only where it came from is reported.
"""

import hmac
import logging
import os
import secrets
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

import anyio
import uvicorn
from anyio.abc import TaskStatus
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings

from trading_mcp.errors import Redactor
from trading_mcp.ports import Facade
from trading_mcp.server import build_server

__all__ = ["TOKEN_ENV", "TOKEN_FILE", "StaticTokenVerifier", "resolve_token", "serve_http"]

TOKEN_ENV = "TRADING_MCP_TOKEN"
TOKEN_FILE = "mcp_token"
MCP_PATH = "/mcp"
_SHUTDOWN_GRACE_S = 3

logger = logging.getLogger(__name__)


def resolve_token(data_dir: Path, *, env_var: str = TOKEN_ENV, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The bearer token for the HTTP server, and a sentence saying where it is (never the token itself).

    Args:
        data_dir: where the token file lives (``<data_dir>/mcp_token``); created if missing.
        env_var: the environment variable that, when set, holds the token (``TRADING_MCP_TOKEN`` by default).
        env: the environment to read it from; ``os.environ`` by default.

    Raises:
        OSError: the token file cannot be read or written.
    """
    environ = os.environ if env is None else env
    from_env = environ.get(env_var, "").strip()
    if from_env:
        return from_env, f"the token is the value of the environment variable {env_var}"
    path = data_dir / TOKEN_FILE
    if path.exists():
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            path.chmod(0o600)  # someone loosened it; a bearer token must stay the owner's
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, f"the token is in {path} (mode 0600); or set {env_var}"
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Created 0600 from the start (not chmod afterwards), so the token is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)
    return token, f"a new token was generated and written to {path} (mode 0600); or set {env_var}"


class StaticTokenVerifier(TokenVerifier):
    """Accepts exactly one bearer token (compared in constant time)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="trading-mcp", scopes=[])
        return None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listen before uvicorn starts: a client that connects early waits in the backlog, not refused.
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_http(
    facade: Facade,
    host: str,
    port: int,
    token: str,
    *,
    read_only: bool = False,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve MCP over streamable HTTP at ``http://host:port/mcp`` until cancelled (or a signal stops uvicorn).

    Args:
        facade: the engine's facade.
        host: address to bind; loopback addresses also get Host-header checking.
        port: port to bind; 0 picks a free one (the URL passed to ``task_status`` has the real one).
        token: the bearer token clients must send (``Authorization: Bearer <token>``).
        read_only: register only read-only tools.
        task_status: for ``TaskGroup.start``: receives the endpoint URL once the socket listens.

    Raises:
        OSError: the address cannot be bound.
    """
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    netloc = f"[{host}]:{actual_port}" if ":" in host else f"{host}:{actual_port}"
    url = f"http://{netloc}{MCP_PATH}"
    redactor = Redactor()
    redactor.add(token)
    mcp = build_server(
        facade,
        read_only=read_only,
        token_verifier=StaticTokenVerifier(token),
        auth=AuthSettings(
            issuer_url=f"http://{netloc}",  # pydantic parses the URL string
            resource_server_url=url,
            validate_token_resource=False,  # the verifier checks the one token itself
        ),
        redactor=redactor,
    )
    app = mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    config = uvicorn.Config(
        app,
        log_config=None,  # keep the process's logging (stderr); uvicorn's default sends access logs to stdout
        access_log=False,
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=_SHUTDOWN_GRACE_S,
    )
    server = uvicorn.Server(config)
    done = anyio.Event()

    async def run() -> None:
        try:
            # Shielded: uvicorn stops through should_exit and shuts down gracefully, not by cancellation.
            with anyio.CancelScope(shield=True):
                await server.serve(sockets=[sock])
        finally:
            sock.close()
            done.set()

    logger.info("MCP over HTTP at %s (%s mode)", url, facade.mode)
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        task_status.started(url)
        try:
            await done.wait()
        finally:
            server.should_exit = True
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SHUTDOWN_GRACE_S + 5):
                await done.wait()
            server.force_exit = True  # past the grace period: stop waiting for stuck connections
