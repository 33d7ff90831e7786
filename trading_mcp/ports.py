"""The engine facade as the MCP layer sees it: a structural type, so this package depends on the contract
only.

``engine.runtime.facade.EngineFacade`` satisfies it; tests may pass anything else that does.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

from engine.runtime.markets_view import MarketsView
from engine.runtime.views import (
    BalanceView,
    DiagnosisView,
    EmergencyStopView,
    EventView,
    MarketView,
    OrdersView,
    OrderView,
    PerformanceView,
    PositionsView,
    RiskView,
    StatusView,
    StrategiesView,
    StrategyView,
    TradesView,
    TradingStateView,
    TuneResultView,
)

__all__ = ["ChangeTopic", "Facade", "ProgressFn"]

ProgressFn = Callable[[float, float, str], Awaitable[None]]
ChangeTopic = Literal["balance", "positions", "orders", "trades", "performance", "status"]


class Facade(Protocol):
    """What the MCP server calls. State-changing methods log themselves in the event log with ``source``."""

    @property
    def mode(self) -> Literal["paper", "live"]: ...

    @property
    def venue(self) -> str: ...

    async def status(self) -> StatusView: ...

    async def balance(self) -> BalanceView: ...

    async def positions(self) -> PositionsView: ...

    async def orders(self, open_only: bool = True, limit: int = 100) -> OrdersView: ...

    async def trades(self, limit: int = 50) -> TradesView: ...

    async def performance(self, strategy: str | None = None, pair: str | None = None) -> PerformanceView: ...

    async def strategies(self) -> StrategiesView: ...

    async def strategy(self, name: str) -> StrategyView: ...

    async def tune_strategy(
        self, name: str, params: Mapping[str, object], *, preview: bool, source: str
    ) -> TuneResultView: ...

    async def set_strategy_enabled(self, name: str, enabled: bool, *, source: str) -> StrategyView: ...

    async def pause(self, *, source: str, reason: str = "") -> TradingStateView: ...

    async def resume(self, *, source: str) -> TradingStateView: ...

    async def risk(self) -> RiskView: ...

    async def set_risk_limits(self, changes: Mapping[str, object], *, source: str) -> RiskView: ...

    async def market(self, pair: str) -> MarketView: ...

    async def markets(self, quote: str = "USD", top: int = 20, size: float = 1000.0) -> MarketsView: ...

    async def events(self, limit: int = 50, kind: str | None = None) -> list[EventView]: ...

    async def diagnose(self, progress: ProgressFn | None = None) -> DiagnosisView: ...

    async def emergency_stop(self, *, flatten: bool, source: str, reason: str = "") -> EmergencyStopView: ...

    async def cancel_order(self, client_id: str, *, source: str) -> OrderView: ...

    async def close_position(self, pair: str, strategy: str | None = None, *, source: str) -> OrdersView: ...

    async def record_event(self, kind: str, source: str, payload: Mapping[str, object]) -> None: ...

    def subscribe_changes(self, callback: Callable[[set[str]], None]) -> Callable[[], None]: ...

    def pair_names(self) -> list[str]: ...

    def strategy_names(self) -> list[str]: ...
