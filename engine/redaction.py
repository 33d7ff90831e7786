"""One redactor for every string that leaves the engine: outputs, logs, events, tool results and errors.

Secrets come from the environment only (the Kraken key and secret, the MCP bearer token), and they must never be
repeated: not in the event log, not in an MCP answer, not in an error printed on the terminal. Two sources of
leaks are masked here:

* the known secrets themselves, wherever they appear (an upstream error that echoes the request, a key a client
  pasted into a ``reason``);
* values under secret-looking keys (``api_key``, ``token``, ``authorization`` ...) in JSON-like payloads.

Everything that prints or records text that came from outside (the exchange, an MCP client) passes through one
:class:`Redactor`.
"""

import logging
import os
import re
from collections.abc import Iterable, Mapping

__all__ = ["REDACTED", "SECRET_ENV_VARS", "RedactingFilter", "Redactor", "redacted_logger", "remember_secret"]

SECRET_ENV_VARS = ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "TRADING_MCP_TOKEN")
REDACTED = "[redacted]"
_CREDENTIAL = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")
_SECRET_KEY = re.compile(r"secret|api[_-]?key|password|authorization|bearer|token|signature|api[_-]?sign", re.I)


class Redactor:
    """Masks secret values (and values under secret-looking keys) in text and payloads.

    Args:
        secrets: literal values never to repeat; values shorter than 4 characters are ignored. By default the
            values of ``KRAKEN_API_KEY``, ``KRAKEN_API_SECRET`` and ``TRADING_MCP_TOKEN`` in the environment, and
            every secret this process was handed otherwise (:func:`remember_secret`).
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        if secrets is None:
            secrets = [*(os.environ.get(name, "") for name in SECRET_ENV_VARS), *_REMEMBERED]
        values = secrets
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        """Also mask ``secret`` (for example the HTTP bearer token, known only once resolved)."""
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with every known secret masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def foreign(self, value: str) -> str:
        """Text from outside (an exchange's error, a client's free text) with known secrets masked and every run
        that looks like a credential (32 or more base64 or URL-safe characters mixing upper case, lower case and
        digits: an API key, a signature, a bearer token) replaced too: an upstream that echoes a signed request
        must not leak the signature, which no list of known secrets contains."""
        return _CREDENTIAL.sub(_mask_credential, self.text(value))

    def payload(self, value: object) -> object:
        """A JSON-like ``value`` with secret values masked and values under secret-looking keys replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                str(k): REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else self.payload(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.payload(v) for v in value]
        return value


def _mask_credential(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
    return REDACTED if mixed else run


class RedactingFilter(logging.Filter):
    """Masks secrets and credential-like runs in every record of the logger it is attached to (its message is
    rendered, redacted, and frozen), whatever handlers the application configured. The secrets are read from
    the environment for each record: they may be set after the logger was made."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = Redactor().foreign(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback repeats the exception's text: keep the type and the redacted text only.
            error = record.exc_info[1]
            record.msg = f"{record.msg}: {type(error).__name__}: {Redactor().foreign(str(error))}"
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = RedactingFilter()
_REMEMBERED: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Mask ``value`` in every default :class:`Redactor` of this process from now on (for a secret that came
    from somewhere other than the environment: a key handed to a client, a generated bearer token)."""
    if value and len(value) >= 4:
        _REMEMBERED.add(value)


def redacted_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with :class:`RedactingFilter` attached: for modules that log text from outside
    (an exchange's errors and messages), which may carry a key or a signature."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
