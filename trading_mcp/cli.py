"""The ``trading-mcp`` command: the engine's commands plus the MCP ones (``serve``, ``attach``, ``run --mcp-http``).

This module lives in ``trading_mcp`` because ``engine`` never imports ``mcp``; it only adds the MCP commands and
hands everything else to :mod:`engine.runtime.cli`.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from engine.errors import FacadeError
from engine.runtime.app import EngineError, RunOptions
from engine.runtime.cli import (
    EXIT_USAGE,
    UsageError,
    _load,
    build_engine,
    build_parser,
    check_live_opt_in,
    cmd_run,
    run_engine_command,
)
from engine.runtime.config import ConfigError
from engine.runtime.facade import EngineFacade
from engine.runtime.state_lock import Owner, StateInUse, StateLock

__all__ = ["main"]


def _parse_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--mcp-http {text!r}: use HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]"), int(port)


def _add_mcp_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run the engine and an MCP server on stdio (for Claude Desktop)")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--db", type=Path, help="SQLite state file")
    serve.add_argument("--speed", help="replay pace: max, realtime or a multiple")
    serve.add_argument("--data", type=Path, help="replay this file instead of the sample")
    serve.add_argument("--pair", help="pair the replayed data is traded as")
    serve.add_argument("--market", choices=["replay", "kraken"], help="market data source")
    serve.add_argument("--live", action="store_true", help="trade real money (also needs TRADING_MCP_ALLOW_LIVE=1)")
    serve.add_argument("--read-only", action="store_true", help="register only read-only tools")

    attach = sub.add_parser("attach", help="bridge stdio to a running engine's MCP HTTP endpoint")
    attach.add_argument("--url", default="http://127.0.0.1:8765/mcp", help="the engine's MCP endpoint")
    attach.add_argument("--token-file", type=Path, help="read the bearer token from this file")


def _cmd_serve(args: argparse.Namespace) -> int:
    from trading_mcp.stdio import serve_stdio

    config = _load(args)
    check_live_opt_in(config, args.live)
    db = args.db if args.db is not None else config.db_path
    read_only = args.read_only or config.mcp.read_only
    holder = StateLock.holder(db)
    if holder is not None:
        # An engine already runs on this state (a `run` in a terminal, say): supervise that one, not a second.
        if holder.control is None:
            raise StateInUse(db, holder)
        return _attach_stdio(Path(holder.control), holder, read_only)
    engine = build_engine(config, db, RunOptions(keep_alive=True))

    async def main() -> None:
        async with engine.serve() as facade:
            await serve_stdio(facade, read_only=read_only)

    anyio.run(main)
    return 0


def _attach_stdio(control: Path, holder: Owner, read_only: bool) -> int:
    """MCP on stdio for the engine already running on the state file, through its control socket."""
    from engine.runtime.control_client import RemoteFacade
    from trading_mcp.stdio import serve_stdio

    print(
        f"attached to the engine of {holder.describe()}: its data, settings and mode apply "
        "(this command's --data, --speed and --market do not)",
        file=sys.stderr,
    )

    async def main() -> None:
        async with RemoteFacade.connect(control) as facade, anyio.create_task_group() as tg:

            async def stdio() -> None:
                await serve_stdio(facade, read_only=read_only)
                tg.cancel_scope.cancel()  # the host closed stdin

            tg.start_soon(stdio)
            await facade.closed.wait()  # the engine stopped: nothing left to supervise
            print("the engine stopped; closing", file=sys.stderr)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return 0


def _cmd_run_with_http(args: argparse.Namespace) -> int:
    from trading_mcp.errors import BindRefused
    from trading_mcp.gateway import supervise_gateway
    from trading_mcp.http import bind_listener, is_loopback, resolve_token, serve_http, transport_security

    host, port = _parse_host_port(args.mcp_http)
    config = _load(args)
    allowed_hosts = (*config.mcp.allowed_hosts, *args.allowed_host)
    allowed_origins = (*config.mcp.allowed_origins, *args.allowed_origin)
    try:  # refused before anything starts, in one line that names the flag
        security = transport_security(
            host, allow_remote=args.allow_remote, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
        )
    except BindRefused as exc:
        raise UsageError(str(exc)) from None
    token, where = resolve_token(config.data_dir, env_var=config.mcp.token_env)
    try:
        sock = bind_listener(host, port)  # before the engine starts: a busy port is reported here, in one line
    except OSError as exc:
        raise UsageError(f"--mcp-http {args.mcp_http}: cannot listen there: {exc.strerror or exc}") from None
    port = sock.getsockname()[1]  # the port asked for, or the one the system picked for :0
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{netloc}/mcp"
    print(f"MCP over HTTP at {url}; bearer token {where}", file=sys.stderr)
    if not is_loopback(host):
        print(
            f"serving beyond this machine: Host must be one of {', '.join(security.allowed_hosts)}",
            file=sys.stderr,
        )

    async def http(facade: EngineFacade) -> None:
        facade.announce_endpoint(url)
        read_only, remote = config.mcp.read_only, args.allow_remote
        if facade.control_path is not None:
            # The MCP server in a process of its own: clients' HTTP and protocol work never takes trading's time.
            await supervise_gateway(
                facade,
                sock,
                host,
                token,
                read_only=read_only,
                allow_remote=remote,
                allowed_hosts=allowed_hosts,
                allowed_origins=allowed_origins,
            )
        else:  # no Unix sockets here (Windows): served from the engine's process
            await serve_http(
                facade,
                host,
                port,
                token,
                read_only=read_only,
                allow_remote=remote,
                allowed_hosts=allowed_hosts,
                allowed_origins=allowed_origins,
                sock=sock,
            )

    return cmd_run(args, extras=[http], keep_alive=True)


def _cmd_attach(args: argparse.Namespace) -> int:
    import os

    from trading_mcp.bridge import attach

    token = os.environ.get("TRADING_MCP_TOKEN", "")
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read token file {args.token_file}: {exc.strerror}") from None
    if not token:
        raise UsageError("no bearer token: set TRADING_MCP_TOKEN or pass --token-file")
    return anyio.run(attach, args.url, token)


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = build_parser()
    _add_mcp_commands(sub)
    run = sub.choices["run"]
    run.add_argument(
        "--mcp-http", metavar="HOST:PORT", help="also serve MCP over streamable HTTP (bearer token required)"
    )
    run.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --mcp-http listen on a non-loopback address (Host and Origin checks stay on)",
    )
    run.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a Host header --mcp-http accepts besides the loopback names and the bound address (repeatable)",
    )
    run.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="URL",
        help="an Origin header --mcp-http accepts besides the loopback origins, e.g. https://desk.lan (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        if (
            args.command == "run"
            and not args.mcp_http
            and (args.allow_remote or args.allowed_host or args.allowed_origin)
        ):
            raise UsageError("--allow-remote, --allowed-host and --allowed-origin only apply with --mcp-http HOST:PORT")
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "attach":
            return _cmd_attach(args)
        if args.command == "run" and args.mcp_http:
            return _cmd_run_with_http(args)
    except (UsageError, ConfigError, EngineError, FacadeError, StateInUse) as exc:
        print(f"trading-mcp {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # an unusable state folder (not writable, not a folder): as the engine's commands say it
        print(f"trading-mcp {args.command}: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_USAGE
    return run_engine_command(args)


if __name__ == "__main__":
    sys.exit(main())
