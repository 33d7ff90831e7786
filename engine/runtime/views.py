"""Read models of the engine, as the facade returns them (JSON-ready, stable field names).

Decimals are serialised as strings so no consumer (an MCP client, a JSON file) ever sees a float. These models are
the documented schemas of the CLI's ``--json`` output and of the MCP resources and tools.
"""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

__all__ = [
    "AssetBalanceView",
    "BacktestView",
    "BacktestWindowView",
    "BalanceView",
    "CheckView",
    "Dec",
    "DiagnosisView",
    "EmergencyStopView",
    "EventView",
    "FillView",
    "MarketView",
    "OrderView",
    "OrdersView",
    "ParamChange",
    "ParamView",
    "PerformanceView",
    "PositionView",
    "PositionsView",
    "RiskLimitView",
    "RiskRuleView",
    "RiskView",
    "StatusView",
    "StrategiesView",
    "StrategyView",
    "TradesView",
    "TradingStateView",
    "TuneResultView",
    "UnvaluedRealizedView",
]

Dec = Annotated[Decimal, PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="always")]
Mode = Literal["paper", "live"]
TradingState = Literal["active", "paused", "halted", "reducing"]

_UNVALUED = (
    "Assets held (asset -> total) that equity leaves out because they cannot be priced in quote_currency now: "
    "no pair path leads there, or a mark on the path is not known yet. Empty when everything is valued."
)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatusView(_View):
    mode: Mode
    venue: str
    trading_state: TradingState
    halt_reason: str
    halted_by: Literal["operator", "client"] | None = Field(
        None,
        description="Who paused or halted trading: the operator (from their shell; only they can resume it) or a "
        "client (an MCP client). None while trading is active.",
    )
    data_source: str
    market_time: str | None
    uptime_s: float
    progress: float | None
    events_processed: int
    events_total: int | None
    strategies_running: list[str]
    quote_currency: str
    equity: Dec
    open_positions: int
    open_orders: int
    trades: int
    unvalued: dict[str, Dec] = Field(default_factory=dict, description=_UNVALUED)


class AssetBalanceView(_View):
    asset: str
    total: Dec
    held: Dec
    available: Dec
    value: Dec | None = Field(
        None,
        description=(
            "total valued in the account's quote_currency at the latest marks (directly, inversely or through one "
            "intermediate asset, e.g. ETH via ETHXBT then XBTUSD); null when it cannot be priced now."
        ),
    )


class BalanceView(_View):
    mode: Mode
    quote_currency: str
    equity: Dec
    cash: Dec
    assets: list[AssetBalanceView]
    unvalued: dict[str, Dec] = Field(default_factory=dict, description=_UNVALUED)
    reserve: Dec = Field(
        Decimal(0),
        description="Profit set aside ([risk] reserve_profit_pct), in the account currency: buys never spend it.",
    )


class PositionView(_View):
    strategy: str
    pair: str
    qty: Dec
    avg_entry: Dec
    mark: Dec | None
    unrealized_pnl: Dec
    realized_pnl: Dec
    fees: Dec


class PositionsView(_View):
    mode: Mode
    positions: list[PositionView]


class OrderView(_View):
    client_id: str
    venue_order_id: str | None
    strategy: str
    pair: str
    side: str
    order_type: str
    qty: Dec
    filled_qty: Dec
    limit_price: Dec | None
    avg_price: Dec | None
    status: str
    reason: str
    created: str


class OrdersView(_View):
    mode: Mode
    orders: list[OrderView]


class FillView(_View):
    trade_id: str
    client_id: str
    strategy: str
    pair: str
    side: str
    qty: Dec
    price: Dec
    fee: Dec
    fee_asset: str
    liquidity: str
    time: str


class TradesView(_View):
    mode: Mode
    trades: list[FillView]


class UnvaluedRealizedView(_View):
    """What the money metrics leave out because it could not be valued in the account currency when it happened
    (no price yet for its asset then). Listed in its own asset, never added as if it were account currency."""

    trades: int = Field(0, description="Closed round trips whose PnL in the account currency is unknown.")
    trade_pnl: dict[str, Dec] = Field(
        default_factory=dict, description="Pair -> those round trips' net PnL, in the pair's own quote asset."
    )
    trade_fees: dict[str, Dec] = Field(
        default_factory=dict, description="Pair -> those round trips' fees, in the pair's own quote asset."
    )
    realized_pnl: dict[str, Dec] = Field(
        default_factory=dict,
        description="Account scope: asset -> realized PnL (gross of fees) that could not be valued when realized.",
    )
    fees: dict[str, Dec] = Field(
        default_factory=dict, description="Account scope: asset -> fees that could not be valued when paid."
    )


class PerformanceView(_View):
    mode: Mode
    scope: str
    return_interval: str
    metrics: dict[str, str | int | None]
    quote_currency: str = Field(
        "",
        description=(
            "The account currency of every money metric: each fill's fee and realized PnL are valued in it when "
            "the fill is booked (a round trip on ETHXBT adds up its fills' BTC amounts valued in it then)."
        ),
    )
    unvalued: UnvaluedRealizedView = Field(default_factory=UnvaluedRealizedView)


class ParamView(_View):
    name: str
    type: Literal["int", "decimal", "bool"]
    value: str
    default: str
    minimum: str | None
    maximum: str | None
    description: str


class StrategyView(_View):
    name: str
    kind: str
    description: str
    pair: str
    enabled: bool
    weight: Dec
    version: int
    params: list[ParamView]
    group: str | None = None
    """The group whose weighted vote the strategy's signals go to (None: it acts on its own)."""
    votes: int = 0
    """Grouped strategies: its signals counted in the group's vote since the engine started."""


class StrategiesView(_View):
    strategies: list[StrategyView]


class ParamChange(_View):
    name: str
    before: str
    after: str


class TuneResultView(_View):
    mode: Mode
    strategy: str
    applied: bool
    version: int
    changes: list[ParamChange]


class TradingStateView(_View):
    mode: Mode
    trading_state: TradingState
    halt_reason: str


class RiskLimitView(_View):
    """A pre-trade limit ([risk.limits]): its value, the operator's cap, and what it measures now."""

    name: str
    value: Dec
    cap: Dec = Field(description="The loosest value the MCP client may set (for every limit, larger is looser).")
    used: Dec | None = Field(
        description="Where the engine stands against it now (exposure, open orders, orders accepted in the last "
        "60 s); None for a limit checked on each order alone (sizes, the price band)."
    )
    description: str


class RiskRuleView(_View):
    """An account rule ([risk.rules]): its threshold, where the account stands, and the room left."""

    name: str
    threshold: Dec
    cap: Dec | None = Field(description="The loosest value the MCP client may set (None: no cap).")
    value: Dec | None = Field(description="Where the account stands now (drawdown %, or today's loss).")
    headroom: Dec | None = Field(description="threshold - value: how far before the rule trips.")
    unit: str
    tripped: bool
    summary: str = Field(description='One line, e.g. "daily loss 212.40 of 500.00 USD".')


class RiskView(_View):
    mode: Mode
    trading_state: TradingState
    limits: list[RiskLimitView]
    rules: list[RiskRuleView] = Field(default_factory=list, description="Account rules that latch ([risk.rules]).")
    breakers: list[RiskRuleView] = Field(
        default_factory=list, description="Per-strategy circuit breakers that are on ([risk.breakers])."
    )
    guards: list[RiskRuleView] = Field(
        default_factory=list, description="Position guards of open positions: trigger level, mark, headroom."
    )
    halt_reason: str = ""


class MarketView(_View):
    pair: str
    time: str | None
    last: Dec | None
    bid: Dec | None
    ask: Dec | None
    bid_qty: Dec | None
    ask_qty: Dec | None


class EventView(_View):
    id: int
    time: str = Field(description="Wall-clock time it was recorded (UTC).")
    market_time: str = Field(description="The engine's clock then: in a replay, the replayed market's time.")
    kind: str
    source: str
    payload: dict[str, object]


class CheckView(_View):
    component: str
    status: Literal["ok", "warn", "fail"]
    evidence: str
    suggestion: str


class DiagnosisView(_View):
    mode: Mode
    overall: Literal["ok", "warn", "fail"]
    checks: list[CheckView]


class EmergencyStopView(_View):
    mode: Mode
    already_halted: bool
    canceled_orders: int
    flatten_orders: list[str]
    trading_state: TradingState
    open_orders_after: int
    positions_after: list[PositionView]


class BacktestWindowView(_View):
    """The stretch of the data a backtest replayed."""

    start: str = Field(description="Open of the first candle replayed (UTC).")
    end: str = Field(description="Close of the last candle replayed (UTC).")
    candles: int = Field(description="How many candles were replayed.")
    requested_start: str | None = Field(None, description="The window's start as asked (None: the file's start).")
    requested_end: str | None = Field(None, description="The window's end as asked (None: the file's end).")


class BacktestView(_View):
    """A backtest's summary: one strategy over a data file, on a simulated account of its own (the live engine's
    state is neither read nor changed); the figures ``trading-mcp backtest --json`` prints for the same run."""

    data: str = Field(description="The data file, as named ('sample': the shipped Kraken one-minute capture).")
    strategy: str
    params: dict[str, str] = Field(description="The parameters it ran with (defaults of the others left out).")
    pair: str
    quote_currency: str = Field(description="The account currency of every money figure.")
    window: BacktestWindowView
    final_equity: Dec
    metrics: dict[str, str | int | None] = Field(
        description="As get_performance reports them. A figure that does not hold is null: Sharpe, Sortino and "
        "cagr need at least two days and 30 returns (annualised_note says why they are null); return_interval and "
        "periods_per_year are the annualisation used."
    )
    trades: int = Field(description="Closed round trips.")
    fills: int
    refusals: dict[str, int] = Field(description="Orders refused before they were sent, by rule.")
    guard_exits: dict[str, int] = Field(description="Position guard exits (stop loss, take profit...), by rule.")
    breaker_trips: dict[str, int] = Field(description="Circuit breaker trips, by rule.")
    rejected_by_venue: int = Field(description="Orders the simulated venue rejected.")
    notes: list[str] = Field(default_factory=list, description="What the run had to assume (a pair's rules...).")
