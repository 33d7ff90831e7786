"""A scanner-chosen universe: the market scanner picks which of the operator's allowlisted pairs may open positions.

With ``[universe] source = "scanner"`` the engine runs one strategy (``kind``, ``params``) on every allowlisted
pair: :func:`universe_strategies` adds them to the configured ones, named ``<kind>.<BASE>-<QUOTE>``. Every
``rerank_minutes`` of market time the scanner ranks the allowlisted pairs on the candles replayed before that
moment (never the candle being decided on), and the best ``top`` whose status is online become the universe:
their strategies trade; the others' only close what they hold (a pair leaving the universe never traps a
position). Every change is an event (``universe_changed``: added, removed, members, scores), and the universe
and the time of the next ranking are saved, so a restart decides exactly as an uninterrupted run.

The operator bounds it: nothing outside the allowlist is ever traded, and the risk limits and caps apply to
every order as to any other. The ranking reads the candles each pair's strategy has seen, so a replay and
Kraken's live feed are ranked the same way (on a live feed the universe forms once every pair has its warm-up of
candles since the start; a restart starts that count again).
"""

import itertools
from typing import TYPE_CHECKING, Any

from engine.market.scanner import MarketInput, ScanSettings, rank
from engine.market.scanner_inputs import candles_from_events
from engine.runtime.config import Config, StrategyConfig, UniverseConfig

if TYPE_CHECKING:
    from engine.runtime.app import Engine
    from engine.runtime.trader import StrategySlot

__all__ = ["UNIVERSE_KV", "Universe", "universe_strategies"]

UNIVERSE_KV = "universe"
RANK_CANDLES = 720  # as many as Kraken's OHLC gives the scanner
_NS_PER_MINUTE = 60 * 10**9


def slot_name(kind: str, pair: str) -> str:
    return f"{kind}.{pair.replace('/', '-')}"


def universe_strategies(config: Config) -> list[StrategyConfig]:
    """The strategies a scanner-chosen universe adds: one per allowlisted pair not configured by name already."""
    u = config.universe
    if u.source != "scanner":
        return []
    taken = {s.name for s in config.strategies}
    return [
        StrategyConfig(
            name=slot_name(u.kind, pair),
            kind=u.kind,
            pair=pair,
            params=dict(u.params),
            order_quote_amount=u.order_quote_amount,
        )
        for pair in u.allowlist
        if slot_name(u.kind, pair) not in taken
    ]


class Universe:
    """The pairs currently in the universe and when the next ranking is due (see the module)."""

    def __init__(self, settings: UniverseConfig) -> None:
        self.settings = settings
        self.members: list[str] = []
        self.next_ns = 0  # due at the first candle
        self.ranks = 0
        self._names = {slot_name(settings.kind, p) for p in settings.allowlist}

    def restore(self, saved: object) -> None:
        """Take back what a previous run saved (``{"members": [...], "next_ns": ...}``); anything else is ignored."""
        if isinstance(saved, dict):
            members = saved.get("members")
            if isinstance(members, list):
                self.members = [m for m in members if isinstance(m, str) and m in self.settings.allowlist]
            next_ns = saved.get("next_ns")
            if isinstance(next_ns, int):
                self.next_ns = next_ns

    def apply(self, slots: "list[StrategySlot]") -> None:
        """Let the universe's strategies buy and the others only sell."""
        inside = set(self.members)
        for slot in slots:
            if slot.name in self._names:
                slot.exits_only = slot.pair not in inside

    def rerank(self, engine: "Engine", now_ns: int, interval_s: int) -> None:
        """Rank the allowlisted pairs on the candles before ``now_ns`` and make the best ``top`` the universe.

        The candles are the ones each pair's strategy has seen (its slot's history: on a replay, rebuilt exactly
        by a restart's warm-up; on Kraken's feed, the candles since the start), the last :data:`RANK_CANDLES`.
        """
        u = self.settings
        markets = []
        for slot in engine.slots:
            if slot.name in self._names and len(slot.history) >= u.warmup_candles:
                inst = engine.instruments[slot.pair]
                recent = list(itertools.islice(reversed(slot.history), RANK_CANDLES))[::-1]
                series = candles_from_events(recent)
                markets.append(MarketInput(inst.pair, inst.base, inst.quote, inst.status, None, series))
        if len(markets) < min(u.top, len(u.allowlist)):
            # Not every pair has its warm-up yet: look again once a warm-up's worth of candles has passed.
            self.next_ns = now_ns + min(u.rerank_minutes * 60, u.warmup_candles * max(interval_s, 1)) * 10**9
            return
        ranking = rank(markets, ScanSettings(quote=u.quote, size_usd=float(u.size_usd)))
        chosen = [r for r in ranking.ranked if r.status in (None, "online")][: u.top]
        members = sorted(r.pair for r in chosen)
        self.next_ns = now_ns + u.rerank_minutes * _NS_PER_MINUTE
        self.ranks += 1
        before = set(self.members)
        changed = set(members) != before
        self.members = members
        self.apply(engine.slots)
        allowed = set(u.allowlist)
        payload: dict[str, Any] = {
            "members": members,
            "added": sorted(set(members) - before),
            "removed": sorted(before - set(members)),
            "scores": {r.pair: round(r.score, 4) for r in chosen},
            "excluded": {e.pair: e.reason for e in ranking.excluded if e.pair in allowed},
            "market_time_ns": now_ns,
        }
        if changed:
            engine.journal.event("universe_changed", "scanner", payload)
        engine.journal.set_kv(UNIVERSE_KV, {"members": members, "next_ns": self.next_ns})
