"""Single-use, short-lived confirmation tokens for dangerous tools, for clients that cannot ask the human.

The first call of a dangerous tool without a token gets a token bound to the tool and its arguments; the
second call with that token executes. A token works once, only before it expires, and only with the same
arguments; any redemption attempt consumes it, so a guessed or replayed token never gets a second try.
Pure: the clock and the token generator are injected.
"""

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trading_mcp.errors import ConfirmationRefused

__all__ = ["Confirmation", "ConfirmationStore"]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """An issued token: what it confirms, and when it stops working (on the store's clock)."""

    token: str
    action: str
    fingerprint: str
    expires_at: float


def _fingerprint(arguments: Mapping[str, object]) -> str:
    return json.dumps(dict(arguments), sort_keys=True, default=str, separators=(",", ":"))


class ConfirmationStore:
    """Issues and redeems confirmation tokens.

    Args:
        ttl_s: how long a token stays valid.
        clock: monotonic seconds; injected so tests can expire tokens without waiting.
        new_token: token generator; unguessable by default.
        max_pending: cap on outstanding tokens; the oldest are dropped first.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        max_pending: int = 64,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.ttl_s = ttl_s
        self._clock = clock
        self._new_token = new_token
        self._max_pending = max_pending
        self._pending: dict[str, Confirmation] = {}

    def issue(self, action: str, arguments: Mapping[str, object]) -> Confirmation:
        """A fresh token for ``action`` with exactly these ``arguments``."""
        now = self._clock()
        self._pending = {t: c for t, c in self._pending.items() if c.expires_at > now}
        while len(self._pending) >= self._max_pending:
            del self._pending[next(iter(self._pending))]
        confirmation = Confirmation(self._new_token(), action, _fingerprint(arguments), now + self.ttl_s)
        self._pending[confirmation.token] = confirmation
        return confirmation

    def redeem(self, token: str, action: str, arguments: Mapping[str, object]) -> None:
        """Consume ``token``; return only if it confirms ``action`` with these ``arguments`` in time.

        Raises:
            ConfirmationRefused: the token is unknown or already used, has expired, or was issued for another
                action or other arguments. The token is consumed either way.
        """
        confirmation = self._pending.pop(token, None)
        if confirmation is None:
            raise ConfirmationRefused("the token is unknown or was already used")
        if self._clock() >= confirmation.expires_at:
            raise ConfirmationRefused(f"the token expired (tokens are valid for {self.ttl_s:g} s)")
        if confirmation.action != action or confirmation.fingerprint != _fingerprint(arguments):
            raise ConfirmationRefused("the token was issued for different arguments")

    def pending(self) -> int:
        """How many tokens are outstanding (expired ones included until the next issue)."""
        return len(self._pending)
