"""Typed field readers shared by the REST and WebSocket parsers.

Each reader names the offending field in the :class:`KrakenProtocolError` it raises, so a malformed payload
says where it is malformed (``OpenOrders.open[OQCLML-...].vol: 'abc' is not a number``).
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.domain.money import MoneyError, parse_decimal
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.protocol.timestamps import rfc3339_to_ns, seconds_to_ns

__all__ = [
    "get_bool",
    "get_decimal",
    "get_int",
    "get_mapping",
    "get_str",
    "load_json",
    "opt_decimal",
    "opt_int",
    "opt_str",
    "to_decimal",
    "to_rfc3339_ns",
    "to_seconds_ns",
]

_MISSING = object()


def load_json(text: str | bytes, where: str = "response") -> Any:
    """Parse JSON text with exact numbers: fractions as Decimal, integers as int (big ones stay exact)."""
    try:
        return json.loads(text, parse_float=Decimal)
    except (ValueError, TypeError) as exc:
        snippet = text[:80] if isinstance(text, str) else text[:80].decode("utf-8", "replace")
        raise KrakenProtocolError(f"{where}: not valid JSON ({exc}): {snippet!r}") from exc


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise KrakenProtocolError(f"{where}.{key}: missing")
    return value


def to_decimal(value: object, where: str) -> Decimal:
    """A finite Decimal from a Decimal, int or numeric string (floats are refused)."""
    try:
        return parse_decimal(value, field=where)
    except MoneyError as exc:
        raise KrakenProtocolError(str(exc)) from exc


def to_seconds_ns(value: object, where: str) -> int:
    """UNIX seconds (Decimal, int, numeric string) to nanoseconds."""
    try:
        return seconds_to_ns(value)
    except ValueError as exc:
        raise KrakenProtocolError(f"{where}: {exc}") from exc


def to_rfc3339_ns(value: object, where: str) -> int:
    """An RFC3339 string to nanoseconds."""
    if not isinstance(value, str):
        raise KrakenProtocolError(f"{where}: expected an RFC3339 string, got {value!r}")
    try:
        return rfc3339_to_ns(value)
    except ValueError as exc:
        raise KrakenProtocolError(f"{where}: {exc}") from exc


def get_mapping(obj: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = _get(obj, key, where)
    if not isinstance(value, Mapping):
        raise KrakenProtocolError(f"{where}.{key}: expected an object, got {type(value).__name__}")
    return value


def get_decimal(obj: Mapping[str, Any], key: str, where: str) -> Decimal:
    return to_decimal(_get(obj, key, where), f"{where}.{key}")


def opt_decimal(obj: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = obj.get(key)
    return None if value is None else to_decimal(value, f"{where}.{key}")


def get_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        raise KrakenProtocolError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise KrakenProtocolError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def get_int(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = opt_int(obj, key, where)
    if value is None:
        raise KrakenProtocolError(f"{where}.{key}: missing")
    return value


def opt_int(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    """An integer that may arrive as a JSON int or a digit string (Kraken sends both)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise KrakenProtocolError(f"{where}.{key}: expected an integer, got {value!r}")


def get_bool(obj: Mapping[str, Any], key: str, where: str, default: bool | None = None) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise KrakenProtocolError(f"{where}.{key}: expected true/false, got {value!r}")
    return value
