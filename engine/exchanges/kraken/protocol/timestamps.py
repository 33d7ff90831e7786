"""Kraken's time formats turned into integer nanoseconds since the UNIX epoch (UTC), and back.

WebSocket v2 sends RFC3339 strings with 0 to 9 fraction digits (``2023-10-04T16:26:30.524394914Z``); REST
sends UNIX seconds as JSON numbers (``1688667796.8802``), which arrive here as Decimal or int. ``datetime``
keeps only microseconds, so the fraction is read separately to keep all nine digits. Going out (an order's
expiry), Kraken takes whole seconds: :func:`ns_to_rfc3339` and :func:`ns_to_seconds` round down.
"""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

__all__ = ["ns_to_rfc3339", "ns_to_seconds", "rfc3339_to_ns", "seconds_to_ns"]

_NS = 1_000_000_000
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
# One-entry cache: consecutive messages mostly fall in the same second, and parsing the date is the slow part.
# A single tuple so that a reader in another thread never sees a head paired with another head's value.
_cache: tuple[str, int] = ("", 0)


def rfc3339_to_ns(text: str) -> int:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`` to UNIX nanoseconds.

    Raises:
        ValueError: when ``text`` is not such a timestamp.
    """
    global _cache
    if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt ":
        raise ValueError(f"not an RFC3339 timestamp: {text!r}")
    head = text[:19]
    rest = text[19:]
    fraction_ns = 0
    # Fast path for what Kraken sends: ".<1-9 digits>Z".
    if rest[0] == "." and rest[-1] == "Z" and 2 < len(rest) <= 11 and rest[1:-1].isdigit():
        fraction_ns = int(rest[1:-1].ljust(9, "0"))
        rest = "Z"
    elif rest[0] == ".":
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        if not digits or len(digits) > 9:
            raise ValueError(f"bad fraction in timestamp: {text!r}")
        fraction_ns = int(digits.ljust(9, "0"))
        rest = rest[end:]
    offset_s = _offset_seconds(rest, text)
    cached_head, head_ns = _cache
    if head != cached_head:
        try:
            moment = datetime.fromisoformat(head)
        except ValueError as exc:
            raise ValueError(f"not an RFC3339 timestamp: {text!r}") from exc
        seconds = (moment.toordinal() - _EPOCH_ORDINAL) * 86400 + moment.hour * 3600 + moment.minute * 60
        head_ns = (seconds + moment.second) * _NS
        _cache = (head, head_ns)
    return head_ns - offset_s * _NS + fraction_ns


def _offset_seconds(zone: str, text: str) -> int:
    if zone in ("Z", "z"):
        return 0
    if len(zone) == 6 and zone[0] in "+-" and zone[3] == ":" and zone[1:3].isdigit() and zone[4:].isdigit():
        seconds = int(zone[1:3]) * 3600 + int(zone[4:]) * 60
        return seconds if zone[0] == "+" else -seconds
    raise ValueError(f"timestamp lacks a UTC offset: {text!r}")


def seconds_to_ns(value: object) -> int:
    """UNIX seconds (Decimal, int or numeric string; not float) to nanoseconds, truncating below 1 ns.

    Raises:
        ValueError: for floats, booleans and anything that is not a finite number.
    """
    if isinstance(value, bool | float):
        raise ValueError(f"time {value!r} must be parsed as Decimal (json.loads(..., parse_float=Decimal))")
    if isinstance(value, int):
        return value * _NS
    try:
        seconds = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a time in seconds: {value!r}") from exc
    if not seconds.is_finite():
        raise ValueError(f"not a time in seconds: {value!r}")
    return int(seconds.scaleb(9))


def ns_to_seconds(ns: int) -> int:
    """UNIX nanoseconds as whole UNIX seconds, rounded down (REST ``expiretm``)."""
    return ns // _NS


def ns_to_rfc3339(ns: int) -> str:
    """UNIX nanoseconds as ``YYYY-MM-DDTHH:MM:SSZ``, rounded down to the second (WebSocket v2 ``expire_time``)."""
    return datetime.fromtimestamp(ns_to_seconds(ns), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
