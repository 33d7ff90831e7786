"""Signing of Kraken private REST calls, request-body encoding, and nonces.

``API-Sign = b64(HMAC-SHA512(key=b64decode(secret), msg=uri_path + SHA256(str(nonce) + body)))`` where
``body`` is the exact request body sent: the form-encoded string or the compact JSON string. Callers
therefore encode the body once with :func:`encode_form` or :func:`encode_json` and both sign and send that
same string.
"""

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from urllib.parse import urlencode

from engine.exchanges.kraken.protocol.errors import KrakenFatalError

__all__ = ["NonceSource", "encode_form", "encode_json", "plain_decimal", "sign"]

_MAX_NONCE = 2**64 - 1


def sign(secret_b64: str, uri_path: str, nonce: int | str, body: str) -> str:
    """The ``API-Sign`` header value for a private REST call.

    Args:
        secret_b64: the API secret as Kraken shows it (base64).
        uri_path: the path from ``/0/private`` on, e.g. ``/0/private/AddOrder``.
        nonce: the nonce that is also inside ``body``.
        body: the exact body string sent (form-encoded or JSON).

    Raises:
        KrakenFatalError: when the secret is not valid base64 (a configuration error no retry fixes).
    """
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KrakenFatalError("API secret is not valid base64") from exc
    digest = hashlib.sha256((str(nonce) + body).encode()).digest()
    mac = hmac.new(key, uri_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def plain_decimal(value: Decimal) -> str:
    """A Decimal as a plain number string without exponent (``Decimal("1E-8")`` -> ``"0.00000001"``).

    Raises:
        ValueError: for NaN and infinities.
    """
    if not value.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return format(value, "f")


def _scalar_text(key: str, value: object) -> str:
    # Floats are refused: a price or volume must never pass through binary floating point on its way out.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"parameter {key!r}: cannot encode {type(value).__name__} {value!r}")


def encode_form(params: Mapping[str, object]) -> str:
    """Form-encode ``params`` in their given order (put ``nonce`` first, as Kraken's examples do).

    Decimals are written plainly, booleans as ``true``/``false``, and sequences as comma-separated lists
    (Kraken's convention for ``txid`` lists). ``None`` values are left out.

    Raises:
        TypeError: for floats and other values with no exact text form.
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            text = ",".join(_scalar_text(key, item) for item in value)
        else:
            text = _scalar_text(key, value)
        pairs.append((key, text))
    return urlencode(pairs)


def _jsonable(key: str, value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(key, item) for item in value]
    raise TypeError(f"parameter {key!r}: cannot encode {type(value).__name__} {value!r}")


def encode_json(params: Mapping[str, object]) -> str:
    """Compact JSON (no spaces) for a private REST body; Decimals become plain strings (``"1.25"``).

    Kraken's REST API takes prices and volumes as strings, which keeps every digit. ``None`` values are left
    out at the top level.

    Raises:
        TypeError: for floats and other values with no exact text form.
    """
    body = {key: _jsonable(key, value) for key, value in params.items() if value is not None}
    return json.dumps(body, separators=(",", ":"))


class NonceSource:
    """Strictly increasing nonces at nanosecond resolution.

    The clock (``Callable[[], int]`` returning UNIX nanoseconds) is injected. When it stands still or goes
    back the source returns the previous nonce + 1, so nonces never repeat or decrease within one process.
    Start it with ``floor`` = the last nonce used with the key if that may be ahead of the clock.
    """

    def __init__(self, clock_ns: Callable[[], int], *, floor: int = 0) -> None:
        self._clock_ns = clock_ns
        self._last = floor
        # Nonces must be unique even if two threads ask at once; the lock costs nothing when uncontended.
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        """The last nonce handed out (or the floor)."""
        return self._last

    def next(self) -> int:
        """The next nonce: the clock's value, or last + 1 when the clock has not moved past the last nonce.

        Raises:
            OverflowError: when the nonce would leave Kraken's unsigned 64-bit range.
        """
        with self._lock:
            now = self._clock_ns()
            nonce = now if now > self._last else self._last + 1
            if nonce > _MAX_NONCE:
                raise OverflowError("nonce exceeds 2**64 - 1")
            self._last = nonce
            return nonce
