"""Single-use, short-lived confirmation tokens for dangerous tools, for clients that cannot ask the human.

The first call of a dangerous tool without a token gets a token bound to three things: the client that asked
(``identity.client_identity``: its in-process or stdio stream, or on HTTP its session and bearer credential),
the tool, and every argument of the call. The second call executes only if it comes from the same client, for
the same tool, with the same arguments, before the token expires. Any redemption attempt consumes the token it
names, so a replayed token never gets a second try; a token presented by another client is not even looked up
(to that client it is unknown, and the owner's token is untouched).

Per client, not global:

* pending tokens: a client holds at most ``max_pending``; issuing more drops that client's own oldest, never
  another client's. At most ``max_clients`` clients hold tokens at once; past that a new client is refused
  until some expire, rather than evicting anyone.
* failed redemptions: after ``max_failures`` within ``failure_window_s`` the client's attempts are refused for
  ``lockout_s`` without looking at the token.

Pure: the clock and the token generator are injected (tests expire tokens and lockouts without waiting).
"""

import json
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trading_mcp.errors import ConfirmationRefused

__all__ = ["Confirmation", "ConfirmationStore"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """An issued token: who may redeem it, what it confirms, and when it stops working (on the store's clock)."""

    token: str
    client: str
    action: str
    fingerprint: str
    expires_at: float


def _fingerprint(arguments: Mapping[str, object]) -> str:
    return json.dumps(dict(arguments), sort_keys=True, default=str, separators=(",", ":"))


class ConfirmationStore:
    """Issues and redeems confirmation tokens, per client.

    Args:
        ttl_s: how long a token stays valid.
        clock: monotonic seconds; injected so tests can expire tokens without waiting.
        new_token: token generator; unguessable by default.
        max_pending: outstanding tokens per client; that client's oldest are dropped first.
        max_clients: clients that may hold outstanding tokens at once; a further client is refused.
        max_failures: failed redemptions per client within ``failure_window_s`` before a lockout.
        failure_window_s: the window failed redemptions are counted in.
        lockout_s: how long a client's redemptions are refused after too many failures.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        max_pending: int = 8,
        max_clients: int = 256,
        max_failures: int = 5,
        failure_window_s: float = 60.0,
        lockout_s: float = 60.0,
    ) -> None:
        if ttl_s <= 0 or failure_window_s <= 0 or lockout_s < 0:
            raise ValueError("ttl_s and failure_window_s must be positive, lockout_s not negative")
        if max_pending < 1 or max_clients < 1 or max_failures < 1:
            raise ValueError("max_pending, max_clients and max_failures must be at least 1")
        self.ttl_s = ttl_s
        self._clock = clock
        self._new_token = new_token
        self._max_pending = max_pending
        self._max_clients = max_clients
        self._max_failures = max_failures
        self._window_s = failure_window_s
        self._lockout_s = lockout_s
        self._pending: dict[str, dict[str, Confirmation]] = {}  # client -> token -> confirmation, oldest first
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def issue(self, client: str, action: str, arguments: Mapping[str, object]) -> Confirmation:
        """A fresh token for ``client`` to confirm ``action`` with exactly these ``arguments``.

        Raises:
            ConfirmationRefused: ``max_clients`` other clients hold outstanding tokens.
        """
        now = self._clock()
        self._prune_tokens(now)
        self._prune_failures(now)
        mine = self._pending.get(client)
        if mine is None:
            if len(self._pending) >= self._max_clients:
                raise ConfirmationRefused(
                    f"too many clients are waiting for a confirmation; try again within {self.ttl_s:g} s"
                )
            mine = self._pending[client] = {}
        while len(mine) >= self._max_pending:
            del mine[next(iter(mine))]
        confirmation = Confirmation(self._new_token(), client, action, _fingerprint(arguments), now + self.ttl_s)
        mine[confirmation.token] = confirmation
        return confirmation

    def redeem(self, client: str, token: str, action: str, arguments: Mapping[str, object]) -> None:
        """Consume ``token``; return only if ``client`` was issued it for ``action`` with these ``arguments``, in time.

        Raises:
            ConfirmationRefused: the client is locked out after too many failed attempts (the token is not looked
                at), or the token is unknown to this client or already used, has expired, or was issued for another
                action or other arguments (the token is consumed).
        """
        now = self._clock()
        self._prune_failures(now)  # expired tokens stay until the next issue, so their refusal can say so
        locked_until = self._locked_until.get(client, 0.0)
        if now < locked_until:
            raise ConfirmationRefused(
                f"too many failed confirmation attempts from this client ({self._max_failures} within "
                f"{self._window_s:g} s); try again in {math.ceil(locked_until - now)} s"
            )
        confirmation = self._pending.get(client, {}).pop(token, None)
        if confirmation is None:
            reason = "the token is unknown or was already used (a token works only for the client it was given to)"
        elif now >= confirmation.expires_at:
            reason = f"the token expired (tokens are valid for {self.ttl_s:g} s)"
        elif confirmation.action != action or confirmation.fingerprint != _fingerprint(arguments):
            reason = "the token was issued for different arguments"
        else:
            self._failures.pop(client, None)
            return
        raise ConfirmationRefused(reason + self._count_failure(client, now))

    def pending(self, client: str | None = None) -> int:
        """How many tokens are outstanding, for one client or for all (expired ones included until the next issue)."""
        if client is not None:
            return len(self._pending.get(client, {}))
        return sum(len(tokens) for tokens in self._pending.values())

    def _count_failure(self, client: str, now: float) -> str:
        failures = self._failures.setdefault(client, deque())
        failures.append(now)
        if len(failures) < self._max_failures:
            return ""
        failures.clear()
        self._locked_until[client] = now + self._lockout_s
        return f"; after {self._max_failures} failed attempts this client must wait {self._lockout_s:g} s"

    def _prune_tokens(self, now: float) -> None:
        for client, tokens in list(self._pending.items()):
            for token in [t for t, c in tokens.items() if c.expires_at <= now]:
                del tokens[token]
            if not tokens:
                del self._pending[client]

    def _prune_failures(self, now: float) -> None:
        horizon = now - self._window_s
        for client, failures in list(self._failures.items()):
            while failures and failures[0] <= horizon:
                failures.popleft()
            if not failures:
                del self._failures[client]
        for client in [c for c, until in self._locked_until.items() if until <= now]:
            del self._locked_until[client]
