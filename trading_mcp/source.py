"""Who is calling: the ``source`` the facade records with every change, from the client's own name."""

import re
from typing import Any

__all__ = ["source_of"]

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._@/+-]")


def source_of(session: Any) -> str:
    """``mcp:<client name>`` from the connection's client info, ``mcp:unknown`` when the client gave none.

    The name is client-supplied text: it is reduced to a short, printable form before it reaches the
    audit log.
    """
    params = getattr(session, "client_params", None)
    info = getattr(params, "client_info", None)
    name = getattr(info, "name", None)
    if not isinstance(name, str):
        return "mcp:unknown"
    cleaned = _UNSAFE.sub("", name).strip()[:64]
    return f"mcp:{cleaned or 'unknown'}"
