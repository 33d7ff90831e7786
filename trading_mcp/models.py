"""Input checks and the few result models the MCP layer adds to the engine's views.

Engine views (``engine.runtime.views``) are returned as they are; the models here only wrap what a view
does not cover (the event list, the two-step emergency stop) or what a human is asked (the elicitation
form).
"""

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.market.catalog_files import canonical_pair_name, current_catalog
from engine.market.pair_names import compact
from engine.runtime.views import EmergencyStopView, EventView, StrategyView
from trading_mcp.arguments import DECIMAL_TEXT, MAX_TEXT_VALUE, Scalar, ScalarValue
from trading_mcp.errors import InvalidInput, UnknownName

__all__ = [
    "MAX_CHANGES",
    "EmergencyStopResult",
    "EventsView",
    "ScalarValue",
    "StopConfirmation",
    "StrategyStateView",
    "engine_values",
    "pair_spellings",
    "resolve_name",
    "resolve_pair",
]

MAX_CHANGES = 32
_NAME = re.compile(r"^[A-Za-z0-9_.\-/]{1,64}$")


class EventsView(BaseModel):
    """The tail of the engine's event log, newest last."""

    model_config = ConfigDict(frozen=True)

    events: list[EventView]


class EmergencyStopResult(BaseModel):
    """What ``emergency_stop`` did, or what it will do once confirmed."""

    model_config = ConfigDict(frozen=True)

    status: Literal["stopped", "confirmation_required"]
    mode: Literal["paper", "live"]
    message: str
    confirmation_token: str | None = Field(
        None, description="Pass this back as confirmation_token (same arguments) to execute the stop."
    )
    expires_in_s: int | None = None
    stop: EmergencyStopView | None = Field(None, description="The engine's state after the stop, re-read.")


class StrategyStateView(BaseModel):
    """A strategy after it was enabled or disabled, with the engine's mode."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["paper", "live"]
    strategy: StrategyView


class StopConfirmation(BaseModel):
    """The form a human fills in to confirm an emergency stop."""

    confirm: bool = Field(description="Tick to cancel every open order and halt trading now.")


def engine_values(values: Mapping[str, Scalar], *, what: str) -> dict[str, object]:
    """Check a name -> value mapping from a client and convert it for the facade.

    JSON numbers with a fraction arrive as floats; they are turned into ``Decimal`` through their shortest
    decimal text (``0.1`` stays ``0.1``) so no float reaches the engine. Numbers sent as strings must be plain
    ASCII decimal literals (``arguments.DECIMAL_TEXT``; the argument model already refused anything else) and
    become ``Decimal`` too, so the engine's own, laxer parsing never sees client text. The facade then validates
    every value against the declared schema and the operator's limits.

    Raises:
        InvalidInput: no entries, too many, a malformed name, a non-finite number, or a string that is not a
            plain decimal literal.
    """
    if not values:
        raise InvalidInput(f"no {what} given")
    if len(values) > MAX_CHANGES:
        raise InvalidInput(f"too many {what} at once ({len(values)}; at most {MAX_CHANGES})")
    converted: dict[str, object] = {}
    for name, value in values.items():
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"{what[:-1] if what.endswith('s') else what} name {name[:80]!r} is not a valid name")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInput(f"{name}: {value} is not a finite number")
            converted[name] = Decimal(repr(value))
        elif isinstance(value, str):
            if len(value) > MAX_TEXT_VALUE:
                raise InvalidInput(f"{name}: value is too long")
            if not DECIMAL_TEXT.fullmatch(value):
                raise InvalidInput(f"{name}: {value!a} is not a plain decimal number")
            converted[name] = Decimal(value)
        else:
            converted[name] = value
    return converted


def pair_spellings(name: str) -> list[str]:
    """The compact spellings of a pair the engine trades (``BTC/USD`` → ``BTCUSD``, ``XBTUSD``, ``XXBTZUSD``)."""
    found = current_catalog().find(name)
    names = [name] if found is None else [name, found.altname, found.rest_name, found.wsname]
    return [compact(n) for n in names if n]


def resolve_pair(text: str, known: list[str]) -> str:
    """The pair of ``known`` (canonical names) that ``text`` spells, in any of Kraken's or the usual spellings.

    Raises:
        UnknownName: naming the known pairs when none matches.
    """
    if text in known:
        return text
    name = canonical_pair_name(text) if text.strip() else text
    if name in known:
        return name
    return resolve_name(text, known, what="pair")


def resolve_name(text: str, known: list[str], *, what: str) -> str:
    """The entry of ``known`` that ``text`` names, ignoring case and the separators ``/ - _``.

    Raises:
        UnknownName: naming the known entries when none matches.
    """

    def norm(s: str) -> str:
        return re.sub(r"[/\-_ ]", "", s).upper()

    wanted = norm(text)
    for name in known:
        if norm(name) == wanted:
            return name
    listing = ", ".join(known) if known else "none"
    raise UnknownName(f"unknown {what} {text[:80]!r} (known: {listing})")
