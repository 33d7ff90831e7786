"""Which client is calling, as far as the transport can tell clients apart: what confirmation tokens are bound to.

What the SDK (mcp 2.3.0) keeps from one request to the next, per protocol era and transport:

* 2025-11-25 (handshake): one ``Connection`` per session. In-process ``Client(server, mode="legacy")`` and stdio:
  one per stream; streamable HTTP: one per ``Mcp-Session-Id``, which the server issues at ``initialize`` and
  refuses (404) when it does not know it.
* 2026-07-28 (no handshake, no session): a fresh ``Connection`` for every request, on every transport
  (``Connection.from_envelope``), so nothing connection-scoped survives from the call that issues a token to the
  call that redeems it.

What does survive, in both eras:

* the server's lifespan, entered once per transport stream (one in-process ``Client``, in either era; one stdio
  process) and once per process for streamable HTTP, where every HTTP client shares it. A stream has exactly
  one peer, so outside HTTP the lifespan *is* the client;
* on HTTP, the request: its ``Mcp-Session-Id`` (2025-11-25) and its ``Authorization`` bearer token (the
  authenticated principal; with ``serve_http``'s single static token, every holder of the token).

So a client's identity is a digest of a random key made when the lifespan starts (:class:`ClientScope`), plus,
on HTTP, the session id when there is one and the bearer credential. Two in-process clients, two stdio
processes or two HTTP sessions are two clients. What a client says about itself (``clientInfo``) is left out
on purpose: any client can claim any name, and a name in the identity would let a client escape its own
redemption rate limit by renaming itself. The consequence: over 2026-07-28 HTTP, where there is no session,
every client holding the same bearer token is one client (the server cannot tell them apart without believing
what they say); separate principals would need separate tokens.

The identity is a one-way digest: it holds no session id or bearer token, so it is safe to keep in memory
and compare, and it is never written anywhere.
"""

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from mcp.server.context import ServerRequestContext

__all__ = ["ClientScope", "client_identity"]


@dataclass(frozen=True, slots=True)
class ClientScope:
    """What the server's lifespan yields: a random key, fresh for each transport stream (or HTTP process)."""

    key: str = field(default_factory=lambda: secrets.token_hex(16))


def client_identity(ctx: ServerRequestContext[Any, Any]) -> str:
    """An opaque, stable identity of the client behind ``ctx`` (see the module docstring).

    Raises:
        TypeError: the server's lifespan did not yield a :class:`ClientScope` (not built by ``build_server``).
    """
    scope = ctx.lifespan_context
    if not isinstance(scope, ClientScope):
        raise TypeError("the server's lifespan must yield a ClientScope (build the server with build_server)")
    parts = [scope.key]
    headers = getattr(ctx.request, "headers", None)  # a Starlette request on HTTP; None on stdio and in-process
    if headers is not None:
        parts.append("session=" + str(headers.get("mcp-session-id") or ""))
        parts.append("principal=" + str(headers.get("authorization") or ""))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
