"""Kraken's errors, classed by how the caller should respond.

Kraken reports failures as strings ``<severity><category>:<description>`` (``EOrder:Insufficient funds``) in
the REST envelope's ``error`` list or the WebSocket v2 ``error`` field. Strings starting with ``W`` are
warnings and never errors. The one exception tree of this package::

    KrakenError               base; ``errors`` holds Kraken's strings
    ├── KrakenProtocolError   payload malformed or not as documented: a bug or an API change
    ├── KrakenRetryableError  transient (rate limit, busy, unavailable, invalid nonce): back off, resend
    ├── KrakenUserError       Kraken refused this request (funds, minimums, unknown pair/order): don't resend
    └── KrakenFatalError      credentials or permissions are wrong: stop and alert the operator

``KrakenRetryableError`` means the *request* may be resent. For order placement the outcome of a request that
failed with ``EService:Unavailable``/``EGeneral:Internal error`` is unknown, so the caller reconciles (e.g. by
``cl_ord_id``) before resending. ``EAPI:Invalid nonce`` is retryable once with a fresh nonce
(:attr:`KrakenError.invalid_nonce`); repeated invalid nonces get the key banned, so do not loop on it.
"""

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "KrakenError",
    "KrakenFatalError",
    "KrakenProtocolError",
    "KrakenRetryableError",
    "KrakenUserError",
    "classify",
    "envelope_warnings",
    "raise_for_envelope",
]


class KrakenError(Exception):
    """Base of every Kraken error. ``errors`` holds Kraken's error strings (empty for local failures)."""

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[str, ...] = tuple(errors)

    @property
    def rate_limited(self) -> bool:
        """True when any of the errors says a rate limit (REST counter, trading counter, throttle) was hit."""
        return any(_matches(_normalize(e), _RATE_LIMITED) for e in self.errors)

    @property
    def invalid_nonce(self) -> bool:
        """True when Kraken rejected the nonce: resend once with a fresh, larger nonce."""
        return any(_normalize(e).startswith("EAPI:Invalid nonce") for e in self.errors)

    @property
    def throttled_until(self) -> int | None:
        """The UNIX second from ``EService:Throttled:<ts>`` after which calls are accepted again, if given."""
        for raw in self.errors:
            text = _normalize(raw)
            if text.startswith("EService:Throttled:"):
                tail = text.removeprefix("EService:Throttled:")
                if tail.isdigit():
                    return int(tail)
        return None


class KrakenProtocolError(KrakenError):
    """A payload is malformed or lacks a documented field; the message names the field."""


class KrakenRetryableError(KrakenError):
    """A transient failure: wait (see :attr:`rate_limited`, :attr:`throttled_until`) and resend."""


class KrakenUserError(KrakenError):
    """Kraken refused the request itself; resending it unchanged fails again."""


class KrakenFatalError(KrakenError):
    """Credentials or permissions are wrong; nothing will work until the operator fixes them."""


# Prefixes of normalised error strings (spaces around ':' removed). Order within a tuple does not matter:
# the tuples are tried fatal, then user, then retryable; anything else is a refusal (user).
_FATAL = (
    "EAPI:Invalid key",
    "EAPI:Invalid signature",
    "EGeneral:Permission denied",
    "EAuth:",
    "EAccount:",
)
_USER = (
    "EService:Market in cancel_only mode",
    "EService:Market in post_only mode",
    "EService:Market in limit_only mode",
    "EService:Market in reduce_only mode",
)
_RATE_LIMITED = (
    "EAPI:Rate limit exceeded",
    "EOrder:Rate limit exceeded",
    "EOrder:Domain rate limit exceeded",
    "EService:Throttled",
    "EGeneral:Temporary lockout",
    "EGeneral:Too many requests",
    "Exceeded msg rate",
)
_RETRYABLE = (
    *_RATE_LIMITED,
    "EAPI:Invalid nonce",
    "EGeneral:Internal error",
    "EService:",
    "EDatabase:",
)


def _normalize(text: str) -> str:
    # Kraken is inconsistent about spaces ("EService: Throttled: 1688671659"); compare without them.
    return ":".join(part.strip() for part in text.strip().split(":"))


def _matches(text: str, prefixes: Sequence[str]) -> bool:
    return any(text.startswith(prefix) for prefix in prefixes)


def _is_warning(text: str) -> bool:
    return text.startswith("W")


_RANK: dict[type[KrakenError], int] = {KrakenFatalError: 3, KrakenUserError: 2, KrakenRetryableError: 1}


def _class_of(text: str) -> type[KrakenError]:
    norm = _normalize(text)
    if _matches(norm, _FATAL):
        return KrakenFatalError
    if _matches(norm, _USER):
        return KrakenUserError
    if _matches(norm, _RETRYABLE):
        return KrakenRetryableError
    # Everything else (EOrder, EQuery, EGeneral:Invalid arguments, free-text WS errors such as
    # "Currency pair not supported ...") is a refusal of this request.
    return KrakenUserError


def classify(error_strings: Sequence[str]) -> KrakenError:
    """The exception for Kraken's error strings; the most severe class wins (fatal > user > retryable).

    Warnings (``W...``) are ignored.

    Raises:
        ValueError: when there is no error string at all (only warnings, or nothing).
    """
    errors = [e for e in error_strings if isinstance(e, str) and e and not _is_warning(e)]
    if not errors:
        raise ValueError("classify() needs at least one Kraken error string")
    cls = max((_class_of(e) for e in errors), key=lambda c: _RANK[c])
    return cls("; ".join(errors), errors)


def envelope_warnings(payload: Mapping[str, Any]) -> list[str]:
    """The warning strings (``W...``) of a REST envelope."""
    raw = payload.get("error")
    if not isinstance(raw, list):
        return []
    return [e for e in raw if isinstance(e, str) and _is_warning(e)]


def raise_for_envelope(payload: object) -> dict[str, Any]:
    """Return the ``result`` of a REST envelope ``{"error": [...], "result": {...}}`` or raise.

    Raises:
        KrakenError: the classified error when ``error`` holds an ``E...`` string.
        KrakenProtocolError: when the envelope or its ``result`` is malformed.
    """
    if not isinstance(payload, Mapping):
        raise KrakenProtocolError(f"response: expected a JSON object, got {type(payload).__name__}")
    raw_errors = payload.get("error", [])
    if not isinstance(raw_errors, list) or not all(isinstance(e, str) for e in raw_errors):
        raise KrakenProtocolError(f"response.error: expected a list of strings, got {raw_errors!r}")
    if any(e and not _is_warning(e) for e in raw_errors):
        raise classify(raw_errors)
    if "result" not in payload:
        raise KrakenProtocolError("response.result: missing")
    result = payload["result"]
    if not isinstance(result, dict):
        raise KrakenProtocolError(f"response.result: expected an object, got {type(result).__name__}")
    return result
