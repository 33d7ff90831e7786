"""Streamable HTTP with a bearer token, served by uvicorn inside the caller's event loop.

The token comes from ``TRADING_MCP_TOKEN`` or, when that is unset, from a file under the data dir,
generated on first use and readable by the owner only (0600). Every request without the token gets 401. The
token is never logged: only where it came from is reported.

Where it listens (:func:`transport_security`): a loopback address by default. A Host header other than the
loopback names gets 421 and an Origin other than a loopback one 403 (DNS-rebinding protection: a web page on
another site cannot reach the server through a name it controls). Binding anything else (``0.0.0.0``, a LAN
address, a host name) must be asked for with ``allow_remote``, and the checks stay on: the Host must be a loopback
name, the bound address itself, or one of ``allowed_hosts``; the Origin, when a browser sends one, a loopback one
or one of ``allowed_origins``. The SDK would switch the checks off for any non-loopback host; here they are
always passed explicitly.
"""

import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import uvicorn
from anyio.abc import TaskStatus
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from trading_mcp.errors import BindRefused, Redactor
from trading_mcp.ports import Facade
from trading_mcp.server import build_server

__all__ = [
    "TOKEN_ENV",
    "TOKEN_FILE",
    "StaticTokenVerifier",
    "bind_listener",
    "is_loopback",
    "resolve_token",
    "serve_http",
    "transport_security",
]

TOKEN_ENV = "TRADING_MCP_TOKEN"
TOKEN_FILE = "mcp_token"
MCP_PATH = "/mcp"
_SHUTDOWN_GRACE_S = 3

logger = logging.getLogger(__name__)

# What the SDK allows by itself when bound to 127.0.0.1, localhost or ::1 (kept exactly for loopback binds).
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
_NAME = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
_HOST_ENTRY = re.compile(rf"{_NAME}(?::(?:[0-9]{{1,5}}|\*))?")
_ORIGIN_ENTRY = re.compile(rf"https?://{_NAME}(?::(?:[0-9]{{1,5}}|\*))?")


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


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost`` or a loopback address (127.0.0.0/8, ::1).

    Any other name is not loopback, whatever it resolves to today.
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _netloc(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _host_patterns(entry: str) -> list[str]:
    """``--allowed-host`` entry -> the SDK's Host patterns; without a port, any port (and none) is allowed.

    Raises:
        BindRefused: the entry is not a host name, an IPv4 address or a bracketed IPv6 address, with an
            optional port or ``:*``.
    """
    text = entry.strip()
    if not _HOST_ENTRY.fullmatch(text):
        raise BindRefused(
            f"allowed host {entry[:80]!r} is not HOST, HOST:PORT or HOST:* (an IPv6 address goes in brackets)"
        )
    if text.endswith("]") or ":" not in text:
        return [text, f"{text}:*"]
    return [text]


def _origin_pattern(entry: str) -> str:
    """``--allowed-origin`` entry, checked: ``http(s)://HOST[:PORT|:*]``.

    Raises:
        BindRefused: the entry is not such an origin.
    """
    text = entry.strip()
    if not _ORIGIN_ENTRY.fullmatch(text):
        raise BindRefused(f"allowed origin {entry[:80]!r} is not http(s)://HOST, http(s)://HOST:PORT or ...:*")
    return text


def transport_security(
    host: str,
    *,
    allow_remote: bool = False,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
) -> TransportSecuritySettings:
    """The Host and Origin checks for a server bound to ``host`` (see the module docstring), or a refusal.

    Args:
        host: the address or name to bind.
        allow_remote: the operator asked to serve beyond this machine (``--allow-remote``).
        allowed_hosts: further Host header values (``--allowed-host``, ``[mcp] allowed_hosts``).
        allowed_origins: further Origin header values (``--allowed-origin``, ``[mcp] allowed_origins``).

    Raises:
        BindRefused: a non-loopback ``host`` without ``allow_remote``; every interface (``0.0.0.0``, ``::``)
            without an allowed host; a malformed allowed host or origin.
    """
    extra_hosts = [pattern for entry in allowed_hosts for pattern in _host_patterns(entry)]
    origins = [*LOOPBACK_ORIGINS, *(_origin_pattern(entry) for entry in allowed_origins)]
    bound: list[str] = []
    if not is_loopback(host):
        if not allow_remote:
            raise BindRefused(
                f"{host} is not a loopback address: serving MCP beyond this machine needs --allow-remote "
                "(and --allowed-host for each name clients use to reach it)"
            )
        try:
            everywhere = ipaddress.ip_address(host.strip("[]")).is_unspecified
        except ValueError:
            everywhere = False
        if everywhere and not extra_hosts:
            raise BindRefused(
                f"--allow-remote on {host} (every interface) needs at least one --allowed-host HOST[:PORT], "
                "the name or address clients use to reach this machine"
            )
        if not everywhere:
            bound = _host_patterns(_netloc(host, "*") if ":" in host else host)
    elif host.lower().rstrip(".") not in ("127.0.0.1", "localhost", "::1"):
        bound = [_netloc(host, "*")]  # another loopback address (127.0.0.2): itself, not only the usual names
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys([*LOOPBACK_HOSTS, *bound, *extra_hosts])),
        allowed_origins=list(dict.fromkeys(origins)),
    )


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (non-blocking, TCP_NODELAY inherited by connections).

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it every answer waited for the client's delayed ACK (Nagle),
        # ~40 ms per call (a single client got 19 calls/s from an idle engine; 312/s with it).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    allow_remote: bool = False,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    sock: socket.socket | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve MCP over streamable HTTP at ``http://host:port/mcp`` until cancelled (or a signal stops uvicorn).

    Args:
        facade: the engine's facade.
        host: address to bind: loopback unless ``allow_remote`` (see :func:`transport_security`).
        port: port to bind; 0 picks a free one (the URL passed to ``task_status`` has the real one).
        token: the bearer token clients must send (``Authorization: Bearer <token>``).
        read_only: register only read-only tools.
        allow_remote: allow a non-loopback ``host``; Host and Origin checks stay on.
        allowed_hosts: Host header values accepted besides the loopback names and the bound address.
        allowed_origins: Origin header values accepted besides the loopback origins.
        sock: a socket already bound and listening at ``host:port`` (see :func:`bind_listener`; the gateway
            process gets it from the engine, which bound it so that a busy port is reported where it was asked).
        task_status: for ``TaskGroup.start``: receives the endpoint URL once the socket listens.

    Raises:
        BindRefused: the bind is not allowed as asked (nothing was bound).
        OSError: the address cannot be bound.
    """
    security = transport_security(
        host, allow_remote=allow_remote, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )
    sock = sock if sock is not None else bind_listener(host, port)
    actual_port = sock.getsockname()[1]
    netloc = _netloc(host, actual_port)
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
    app = mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=host, transport_security=security)
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
