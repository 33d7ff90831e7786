"""The MCP gateway: the HTTP MCP server of ``run --mcp-http``, in a process of its own.

An MCP call over HTTP costs about a millisecond of CPU in uvicorn, Starlette and the SDK. Served from the engine's
own process, clients reading hard took that time from trading; here it is spent in another process (on another
core when there is one), which also lowers its own scheduling priority so that a busy machine runs trading first.
The gateway reaches the engine through its control socket (:mod:`engine.runtime.control`), where each call costs
the engine only the facade's own work and where reads are admitted within a budget of the engine's time.

The engine's process binds the HTTP socket itself (a busy port is reported where it was asked) and starts the
gateway with it as an inherited file descriptor and the bearer token in the environment, never on the command
line. The gateway exits when the engine's control connection closes; the engine restarts a gateway that died
(a few times, then it says so in the event log).
"""

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
from anyio.abc import TaskStatus

from engine.runtime.control_client import EngineGone, RemoteFacade
from engine.runtime.facade import EngineFacade
from trading_mcp.http import serve_http

__all__ = ["GATEWAY_TOKEN_ENV", "main", "supervise_gateway"]

GATEWAY_TOKEN_ENV = "TRADING_MCP_GATEWAY_TOKEN"
NICENESS = 10
MAX_RESTARTS = 5

log = logging.getLogger(__name__)


async def supervise_gateway(
    facade: EngineFacade,
    sock: socket.socket,
    host: str,
    token: str,
    *,
    read_only: bool,
    allow_remote: bool,
    allowed_hosts: Sequence[str],
    allowed_origins: Sequence[str],
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway for ``facade``'s engine on the listening ``sock`` until cancelled; restart it if it dies.

    Raises:
        RuntimeError: the engine has no control socket (then serve in-process instead).
    """
    control = facade.control_path
    if control is None:
        raise RuntimeError("the engine has no control socket")
    command = [
        sys.executable,
        "-m",
        "trading_mcp.gateway",
        "--control",
        str(control),
        "--listen-fd",
        str(sock.fileno()),
        "--host",
        host,
    ]
    if read_only:
        command.append("--read-only")
    if allow_remote:
        command.append("--allow-remote")
    command += [arg for value in allowed_hosts for arg in ("--allowed-host", value)]
    command += [arg for value in allowed_origins for arg in ("--allowed-origin", value)]
    env = {**os.environ, GATEWAY_TOKEN_ENV: token}
    task_status.started()
    restarts = 0
    try:
        while True:
            # A session of its own: a Ctrl-C in the terminal reaches the engine, which stops its gateway itself.
            process = await anyio.open_process(
                command,
                stdin=None,
                stdout=None,
                stderr=None,
                env=env,
                pass_fds=(sock.fileno(),),
                start_new_session=True,
            )
            try:
                code = await process.wait()
            finally:
                with anyio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.terminate()
                        with anyio.move_on_after(5):
                            await process.wait()
                        if process.returncode is None:
                            process.kill()
                            await process.wait()
            restarts += 1
            await facade.record_event("mcp_gateway_exited", "engine", {"exit_code": code, "restarts": restarts})
            if restarts > MAX_RESTARTS:
                log.error("the MCP gateway keeps exiting (code %s); MCP over HTTP is off until a restart", code)
                return
            await anyio.sleep(min(2.0**restarts / 4, 5.0))
    finally:
        sock.close()


async def _serve(args: argparse.Namespace, token: str) -> None:
    sock = socket.socket(fileno=args.listen_fd)
    async with RemoteFacade.connect(Path(args.control)) as facade, anyio.create_task_group() as tg:

        async def http() -> None:
            url = await tg.start(
                lambda task_status: serve_http(
                    facade,
                    args.host,
                    sock.getsockname()[1],
                    token,
                    read_only=args.read_only,
                    allow_remote=args.allow_remote,
                    allowed_hosts=args.allowed_host,
                    allowed_origins=args.allowed_origin,
                    sock=sock,
                    task_status=task_status,
                )
            )
            log.info("MCP gateway for %s at %s", args.control, url)

        tg.start_soon(http)
        await facade.closed.wait()  # the engine stopped: so does its gateway
        tg.cancel_scope.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the gateway process (started by ``run --mcp-http``, not by hand)."""
    parser = argparse.ArgumentParser(prog="trading_mcp.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--control", required=True, help="the engine's control socket")
    parser.add_argument("--listen-fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--host", required=True, help="the address the socket is bound to")
    parser.add_argument("--read-only", action="store_true")
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--allowed-host", action="append", default=[])
    parser.add_argument("--allowed-origin", action="append", default=[])
    args = parser.parse_args(argv)
    token = os.environ.pop(GATEWAY_TOKEN_ENV, "")
    if not token:
        print("trading_mcp.gateway: no bearer token in the environment", file=sys.stderr)
        return 2
    if hasattr(os, "nice"):
        os.nice(NICENESS)  # trading first when the machine is busy
    try:
        anyio.run(_serve, args, token)
    except EngineGone as exc:
        print(f"trading_mcp.gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
