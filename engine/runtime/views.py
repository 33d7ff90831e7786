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
    "LearningView",
    "MarketView",
    "OptimizeFoldView",
    "OptimizeTrialView",
    "OptimizeView",
    "OptimizeWindowView",
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
    "WhatIfSideView",
    "WhatIfView",
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
    uptime_s: int = Field(description="Wall-clock seconds since this engine started (whole seconds).")
    progress: Dec | None = Field(
        description="The share of the replay done, a fraction from 0 to 1 (to 4 decimals); null on a live feed."
    )
    events_processed: int
    events_total: int | None
    eta_s: int | None = Field(
        None,
        description="Estimated wall seconds until the replay ends, at this run's pace so far (null on a live feed, "
        "before this run's first event, and once the replay has ended).",
    )
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
    weight: Dec = Field(description="Scales every entry (order_quote_amount x weight); moved by learning when on.")
    version: int
    params: list[ParamView]
    weight_bounds: list[Dec] | None = Field(
        None,
        description="[min, max] the operator's [learning] config holds the weight within (None: learning is off, "
        "the weight is the configured one). The MCP client cannot change them.",
    )
    weight_changed_at: str | None = Field(
        None,
        description="Engine time (ISO 8601, UTC) of the weight's last change by learning or the operator's config.",
    )
    weight_reason: str = Field("", description="Why the weight last changed (the weight_changed event's reason).")
    group: str | None = None
    """The group whose weighted vote the strategy's signals go to (None: it acts on its own)."""
    votes: int = 0
    """Grouped strategies: its signals counted in the group's vote since the engine started."""
    pairs: list[str] = Field(
        default_factory=list,
        description="A strategy over several pairs (portfolio_rebalance): all of them, `pair` first; empty for one.",
    )


class LearningView(_View):
    """Adaptive strategy weights ([learning]): the rule and its schedule, read-only."""

    enabled: bool
    rule: str
    every: str = Field(description="Engine time between updates (on multiples of it since 1970-01-01 UTC).")
    lookback: str = Field(description="The round trips scored: an interval of engine time, or the last N.")
    score: str
    eta: Dec
    min_trades: int
    keep_total: bool
    next_update: str | None = Field(None, description="Engine time (ISO 8601, UTC) of the next update.")
    updates: int = Field(0, description="Updates made so far (a tick with no change counts).")


class StrategiesView(_View):
    strategies: list[StrategyView]
    learning: LearningView | None = Field(None, description="Adaptive weights; None while [learning] is off.")


class ParamChange(_View):
    name: str
    before: str
    after: str


class BacktestWindowView(_View):
    """The stretch of the data a backtest replayed."""

    start: str = Field(description="Open of the first candle replayed (UTC).")
    end: str = Field(description="Close of the last candle replayed (UTC).")
    candles: int = Field(description="How many candles were replayed.")
    requested_start: str | None = Field(None, description="The window's start as asked (None: the file's start).")
    requested_end: str | None = Field(None, description="The window's end as asked (None: the file's end).")


class WhatIfSideView(_View):
    """One side of a what-if: a backtest of one parameter set over the strategy's recent candles."""

    params: dict[str, str] = Field(description="Every parameter it ran with.")
    trades: int = Field(description="Closed round trips.")
    net_pnl: Dec = Field(description="End equity - start equity (fees included), in quote_currency.")
    return_pct: Dec | None = Field(description="Net PnL as a percentage of the start equity.")
    max_drawdown_pct: Dec | None = Field(description="Largest peak-to-trough fall of equity, percent of the peak.")
    fees: Dec = Field(description="Fees paid, in quote_currency.")
    fills: int


class WhatIfView(_View):
    """What the proposed parameters would have done against the current ones, on the same recent candles (those the
    engine holds for the strategy's pair), each on a simulated account of its own from the same start."""

    pair: str
    quote_currency: str
    window: BacktestWindowView
    current: WhatIfSideView
    proposed: WhatIfSideView
    notes: list[str] = Field(default_factory=list)


class TuneResultView(_View):
    mode: Mode
    strategy: str
    applied: bool
    version: int
    changes: list[ParamChange]
    what_if: WhatIfView | None = Field(
        None,
        description="With preview=true: backtests of the current and the proposed parameters over the engine's "
        "recent candles, side by side (null when not run: what_if_note says why).",
    )
    what_if_note: str | None = Field(None, description="Why there is no what_if (too few candles...).")


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


class OptimizeTrialView(_View):
    """A trial of an optimisation: its parameters, objective and main metrics (as get_performance names them)."""

    trial: int | None = Field(None, description="Its number (None for an out-of-sample test).")
    params: dict[str, str]
    objective: str | None = Field(description="The objective's value (null: undefined, e.g. no trade).")
    metrics: dict[str, str | int | None]


class OptimizeWindowView(_View):
    start: str = Field(description="Open of the window's first candle (UTC).")
    end: str = Field(description="Close of its last candle (UTC).")
    candles: int


class OptimizeFoldView(_View):
    """A walk-forward fold: the best trial in sample, and that choice tested on the next, unseen candles."""

    fold: int = Field(description="0: the whole window, no out-of-sample test.")
    in_sample: OptimizeWindowView
    in_sample_best: OptimizeTrialView | None
    out_of_sample: OptimizeWindowView | None
    out_of_sample_result: OptimizeTrialView | None
    trials: int
    deflated_sharpe: str | None = Field(description="Deflated Sharpe ratio of the fold's best (null: undefined).")
    warning: str | None


class OptimizeView(_View):
    """An optimisation's summary (never every trial): the best parameters, each fold's in-sample and out-of-sample
    figures, the deflated Sharpe ratio (Bailey and Lopez de Prado, 2014) and the overfitting warnings."""

    data: str
    strategy: str
    pair: str
    window: BacktestWindowView
    objective: str
    sampler: str
    seed: int
    searched: list[str] = Field(description="The ranges searched.")
    fixed: dict[str, str] = Field(description="Parameters held fixed.")
    trials: int = Field(description="Trials run, every fold included.")
    trial_states: dict[str, int] = Field(description="complete, undefined (no objective), invalid (refused).")
    best_params: dict[str, str] | None = Field(description="The parameters to trade (the last fold's choice).")
    best: OptimizeTrialView | None
    deflated_sharpe: str | None = Field(description="Of the best trial; below 0.95: likely overfit.")
    significant: bool | None = Field(description="Whether the deflated Sharpe ratio is at least 0.95.")
    folds: list[OptimizeFoldView]
    out_of_sample_mean_objective: str | None = Field(None, description="With walk-forward: the folds' mean.")
    top_trials: list[OptimizeTrialView] = Field(description="At most the 5 best trials of the last search.")
    warnings: list[str] = Field(description="Overfitting and other warnings.")
    duration_s: Dec
    run_id: int | None = Field(description="Saved as this run (trading-mcp optimize --list); null: not saved.")
    notes: list[str] = Field(default_factory=list)
