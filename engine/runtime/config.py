"""Configuration: one TOML file, validated by pydantic; every setting documented and defaulted.

No file is needed: ``Config()`` is a paper-trading engine on the shipped sample data with 10,000 USD. Unknown keys
are errors that name the key. Secrets never live here: Kraken keys come only from the environment
(``KRAKEN_API_KEY``, ``KRAKEN_API_SECRET``).
"""

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from engine.market.catalog_files import canonical_pair_name, home
from engine.market.higher_candles import TimeframeError, check_timeframes
from engine.risk.account_rules import AccountRules, looser_than_cap
from engine.risk.breakers import BreakerSettings
from engine.risk.limits import RiskLimits
from engine.strategies import ParamError, strategy_class
from engine.strategies.discovery import load_strategy_paths
from engine.strategies.portfolio import PortfolioStrategy

__all__ = [
    "Config",
    "ConfigError",
    "KrakenConfig",
    "LearningBounds",
    "LearningConfig",
    "MarketConfig",
    "McpConfig",
    "PaperConfig",
    "RiskConfig",
    "RiskLimits",
    "StrategyConfig",
    "config_from_mapping",
    "load_config",
    "parse_interval",
    "parse_speed",
]

PositiveDec = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
NonNegDec = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and the rule."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _pair_name(value: str) -> str:
    """Any spelling of a pair → its canonical name (``xbtusd`` → ``BTC/USD``; see engine.market.pair_names)."""
    if not value.strip():
        raise ValueError("a pair name is needed, such as BTC/USD")
    return canonical_pair_name(value)


def parse_speed(text: str) -> float | Literal["auto"] | None:
    """``max`` -> None (as fast as possible); ``realtime`` -> 1.0; a positive number -> that multiple; ``auto`` ->
    ``"auto"``: one candle every 0.1 s of wall time whatever the file's interval (x600 for one-minute candles,
    x36000 for hourly ones; :mod:`engine.runtime.sources`).

    Raises:
        ValueError: for anything else.
    """
    value = text.strip().lower()
    if value == "max":
        return None
    if value == "auto":
        return "auto"
    if value in ("realtime", "real-time", "real"):
        return 1.0
    try:
        speed = float(value.removeprefix("x").removesuffix("x"))
    except ValueError:
        raise ValueError(f"speed {text!r}: use 'auto', 'max', 'realtime' or a positive multiple such as 60") from None
    if not speed > 0 or speed == float("inf"):
        raise ValueError(f"speed {text!r} must be a positive finite number")
    return speed


_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_interval(text: str) -> int:
    """An interval of engine time (``"30m"``, ``"12h"``, ``"1d"``, ``"2w"``) -> seconds.

    Raises:
        ValueError: for anything else, or an interval of zero.
    """
    match = _INTERVAL.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an interval: use a whole number and a unit (m, h, d or w), such as '1d'")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r}: an interval must be longer than zero")
    return seconds


class PaperConfig(_Section):
    """The simulated account and exchange."""

    starting_balances: dict[str, NonNegDec] = Field(
        default_factory=lambda: {"USD": Decimal("10000")},
        description="Opening balances of the paper account, per asset.",
    )
    slippage_bps: NonNegDec = Field(Decimal(0), description="Market-order slippage in basis points (0 = none).")
    fee_volume_30d: NonNegDec | None = Field(
        None,
        description="30-day volume in USD that picks the fee tier of Kraken's published schedule, fixed; empty: the "
        "account's own volume of the last 30 days (fills of pairs quoted in USD, USDT or USDC), as Kraken counts it.",
    )
    volume_participation: Annotated[Decimal, Field(gt=0, le=1)] = Field(
        Decimal(1), description="Share of a candle's volume a resting limit order may fill."
    )


class FeedConfig(_Section):
    """One replayed file and the pair it is traded as."""

    file: Path
    pair: str
    interval_minutes: Annotated[int, Field(gt=0, le=43200)] | None = None
    aggregate_minutes: Annotated[int, Field(gt=0, le=43200)] | None = Field(
        None, description="Turn a trades file into candles of this many minutes."
    )

    @field_validator("pair")
    @classmethod
    def _pair(cls, value: str) -> str:
        return _pair_name(value)


class MarketConfig(_Section):
    """Where market data comes from."""

    source: Literal["replay", "kraken"] = Field("replay", description="Replay a file, or Kraken's live feed.")
    file: Path | None = Field(None, description="File to replay; empty = the shipped Kraken sample.")
    pair: str = Field("BTC/USD", description="Pair the replayed file is traded as (any spelling: BTC/USD, XBTUSD).")
    interval_minutes: Annotated[int, Field(gt=0, le=43200)] | None = Field(
        None, description="Candle interval of the file (inferred when empty)."
    )
    speed: str = Field(
        "auto",
        description="Replay pace: 'auto' (a candle every 0.1 s: x600 for one-minute candles, x36000 for hourly), "
        "'max', 'realtime' or a multiple such as 60.",
    )
    feeds: list[FeedConfig] = Field(
        default_factory=list, description="Several files (several pairs) replayed together in time order."
    )

    @field_validator("speed")
    @classmethod
    def _speed(cls, value: str) -> str:
        parse_speed(value)
        return value

    @field_validator("pair")
    @classmethod
    def _pair(cls, value: str) -> str:
        return _pair_name(value)


class StrategyConfig(_Section):
    """One strategy instance: a kind, the pair it trades, its weight and its parameters."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: str
    pair: str = "BTC/USD"
    enabled: bool = True
    weight: Annotated[Decimal, Field(ge=0, le=10, allow_inf_nan=False)] = Decimal(1)
    order_quote_amount: PositiveDec = Field(
        Decimal(1000),
        description="Amount in the account currency (quote_currency) spent per entry (× weight); a pair quoted in "
        "another asset spends its worth at current prices.",
    )
    params: dict[str, int | bool | str | Decimal] = Field(default_factory=dict)
    breakers: BreakerSettings | None = Field(
        None, description="This strategy's circuit breakers, in place of [risk.breakers] (left out: those)."
    )
    group: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] | None = Field(
        None,
        description="Strategies of one group (same pair) decide together: their signals are a vote weighted by "
        "`weight`, and the group sends at most one order per candle (README: Strategy groups).",
    )

    pairs: list[str] = Field(
        default_factory=list,
        description="The pairs of a strategy over several pairs (portfolio_rebalance; `pair` is then the first); "
        "left out: its one `pair`.",
    )

    @field_validator("pair")
    @classmethod
    def _pair(cls, value: str) -> str:
        return _pair_name(value)

    @model_validator(mode="before")
    @classmethod
    def _pair_is_the_first_of_pairs(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pair" not in data and isinstance(data.get("pairs"), list) and data["pairs"]:
            data = {**data, "pair": data["pairs"][0]}
        return data

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, values: list[str]) -> list[str]:
        pairs = [_pair_name(v) for v in values]
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        if twice:
            raise ValueError(f"pairs lists {', '.join(twice)} more than once")
        return pairs

    @model_validator(mode="after")
    def _check_params(self) -> Self:
        try:
            cls = strategy_class(self.kind)
            values = cls.validate(self.params, base=None)
            check_timeframes(1, cls.timeframes_for(values))
            if issubclass(cls, PortfolioStrategy):
                if self.pairs and self.pair != self.pairs[0]:
                    raise ParamError(
                        f"pair {self.pair} must be the first of pairs ({', '.join(self.pairs)}), or left out"
                    )
                cls.check_pairs(values, self.traded_pairs)
                if self.group is not None:
                    raise ParamError(f"{self.kind} decides over its pairs on its own: it cannot vote in a group")
            elif self.pairs:
                raise ParamError(f"{self.kind} trades one pair: `pairs` is for strategies over several pairs")
        except (ParamError, TimeframeError) as exc:
            raise ValueError(f"strategy {self.name!r}: {exc}") from None
        if self.group is not None and cls.uses_book():
            raise ValueError(f"strategy {self.name!r}: {self.kind} quotes on the book and cannot vote in a group")
        return self

    @property
    def traded_pairs(self) -> tuple[str, ...]:
        """Every pair this strategy trades: its ``pairs``, or its one ``pair``."""
        return tuple(self.pairs) or (self.pair,)

    @property
    def timeframes(self) -> tuple[int, ...]:
        """The higher intervals (seconds) this strategy asks for with its configured parameters."""
        cls = strategy_class(self.kind)
        return cls.timeframes_for(cls.validate(self.params, base=None))


def _default_strategies() -> list[StrategyConfig]:
    return [
        StrategyConfig(name="ema_cross", kind="ema_cross", pair="BTC/USD", params={"fast": 12, "slow": 26}),
        StrategyConfig(name="mean_reversion", kind="mean_reversion", pair="BTC/USD", params={"period": 20}),
    ]


class RiskConfig(_Section):
    """Current limits, and the operator's caps: nothing (the MCP server included) may loosen beyond the caps."""

    limits: RiskLimits = Field(default_factory=RiskLimits)
    caps: RiskLimits = Field(
        default_factory=lambda: RiskLimits(
            max_order_qty=Decimal(5),
            max_order_notional=Decimal(5000),
            max_pair_notional=Decimal(10000),
            max_total_notional=Decimal(20000),
            max_open_orders=50,
            max_orders_per_minute=600,
            price_band_pct=Decimal(50),
        )
    )
    rules: AccountRules = Field(
        default_factory=AccountRules, description="Account rules that latch: drawdown, daily loss, exits only."
    )
    rule_caps: AccountRules = Field(
        default_factory=AccountRules, description="The loosest rules the MCP client may set (left out: no cap)."
    )
    breakers: BreakerSettings = Field(
        default_factory=BreakerSettings,
        description="Per-strategy circuit breakers (each strategy counted on its own): a run of losing round trips, "
        "a burst of strategy errors, stale market data; a trip disables that strategy until it is enabled again.",
    )
    reserve_profit_pct: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] = Field(
        Decimal(0),
        description="Share (%) of each winning round trip's net profit moved to a reserve that buys never spend "
        "(0 = none).",
    )
    flatten_on_emergency_stop: bool = Field(False, description="Default of emergency_stop's flatten option.")
    mcp_may_resume_operator_halt: bool = Field(
        False,
        description="Let the MCP client lift a halt the operator made with `trading-mcp halt` (by default only "
        "`trading-mcp resume` from the operator's shell can).",
    )

    @model_validator(mode="after")
    def _limits_within_caps(self) -> Self:
        for name in RiskLimits.model_fields:
            if getattr(self.limits, name) > getattr(self.caps, name):
                raise ValueError(f"risk.limits.{name} exceeds risk.caps.{name}")
        for name in looser_than_cap(self.rules, self.rule_caps):
            raise ValueError(f"risk.rules.{name} is looser than risk.rule_caps.{name}")
        return self


class ParamBounds(_Section):
    minimum: Decimal | None = None
    maximum: Decimal | None = None


class TuningConfig(_Section):
    """What remote tuning may do: per strategy name, per parameter, bounds narrower than the declared ones."""

    allowed: bool = Field(True, description="Whether strategies may be tuned at run time at all.")
    bounds: dict[str, dict[str, ParamBounds]] = Field(default_factory=dict)


WeightDec = Annotated[Decimal, Field(gt=0, le=10, allow_inf_nan=False)]


class LearningBounds(_Section):
    """One strategy's own weight bounds for learning (left out: the [learning] ones)."""

    min_weight: WeightDec | None = None
    max_weight: WeightDec | None = None


class LearningConfig(_Section):
    """Adaptive strategy weights (engine.runtime.learning): every ``every`` of engine time each strategy's weight
    is multiplied by exp(eta × its normalised score) over its recent round trips, within the operator's bounds.
    Only the operator's config sets these: the MCP client can read them (``bot://strategies``), never change them."""

    enabled: bool = Field(False, description="Move the strategies' weights with their recent performance.")
    every: str = Field("1d", description="Engine time between updates (m, h, d, w), on multiples since 1970 UTC.")
    lookback: StrictInt | str = Field(
        "30d", description="The round trips scored: those closed within this interval ('30d'), or the last N (50)."
    )
    min_trades: Annotated[int, Field(ge=1, le=100_000)] = Field(
        5, description="Fewer round trips than this in the lookback: the strategy keeps its weight."
    )
    score: Literal["sharpe", "mean_return"] = Field(
        "sharpe",
        description="'mean_return': the mean net return per unit risked (net PnL / entry notional) of the round "
        "trips; 'sharpe': that mean over the returns' standard deviation.",
    )
    score_scale: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None,
        description="The score that counts as a full gain (+1) or loss (-1); beyond it the gain is capped. "
        "Default: 1 for sharpe, 0.01 (1 % per round trip) for mean_return.",
    )
    eta: Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        Decimal("0.2"), description="Learning rate: a full gain multiplies the weight by exp(eta) at most."
    )
    min_weight: WeightDec = Field(Decimal("0.25"), description="No weight goes below this (above zero).")
    max_weight: WeightDec = Field(Decimal(2), description="No weight goes above this (at most 10).")
    keep_total: bool = Field(
        True,
        description="Rescale the updated weights so that their sum stays what it was (capital moves between "
        "strategies; a lone strategy's weight then never moves); false: each weight moves on its own.",
    )
    strategies: dict[str, LearningBounds] = Field(
        default_factory=dict, description="Per strategy name: its own min_weight / max_weight."
    )

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        parse_interval(value)
        return value

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("a number of round trips must be at least 1")
            return value
        parse_interval(value)
        return value

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if self.min_weight > self.max_weight:
            raise ValueError(f"min_weight {self.min_weight} is above max_weight {self.max_weight}")
        for name in self.strategies:
            lo, hi = self.bounds(name)
            if lo > hi:
                raise ValueError(f"strategies.{name}: min_weight {lo} is above max_weight {hi}")
        return self

    @property
    def every_s(self) -> int:
        return parse_interval(self.every)

    @property
    def lookback_s(self) -> int | None:
        """The lookback as seconds of engine time (None: it is a number of round trips)."""
        return None if isinstance(self.lookback, int) else parse_interval(self.lookback)

    @property
    def scale(self) -> Decimal:
        if self.score_scale is not None:
            return self.score_scale
        return Decimal(1) if self.score == "sharpe" else Decimal("0.01")

    def bounds(self, name: str) -> tuple[Decimal, Decimal]:
        """The weight bounds of strategy ``name``: its own where set, else the [learning] ones."""
        own = self.strategies.get(name)
        lo = own.min_weight if own is not None and own.min_weight is not None else self.min_weight
        hi = own.max_weight if own is not None and own.max_weight is not None else self.max_weight
        return lo, hi


class KrakenConfig(_Section):
    """Kraken endpoints and pacing (overridable so tests can point at a local fake)."""

    rest_url: str = "https://api.kraken.com"
    ws_public_url: str = "wss://ws.kraken.com/v2"
    ws_private_url: str = "wss://ws-auth.kraken.com/v2"
    tier: Literal["starter", "intermediate", "pro"] = "starter"
    book_depth: Literal[10, 25, 100, 500, 1000] = 10
    ohlc_interval: Literal[1, 5, 15, 30, 60, 240, 1440] = 1
    dead_man_switch_s: Annotated[int, Field(ge=10, lt=86400)] = 60
    candle_grace_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="A live candle closes this long after its interval ends even if no later update came (Kraken "
        "sends updates only on trades); longer waits for a late last trade, shorter acts sooner.",
    )


class UniverseConfig(_Section):
    """Which pairs the engine trades: the configured strategies only, or also a scanner-chosen universe.

    With ``source = "scanner"`` the engine runs one strategy of ``kind`` on every pair of ``allowlist`` (the
    operator's bound: nothing outside it is ever traded), and every ``rerank_minutes`` of market time lets the
    best ``top`` of them by the market scanner's ranking open positions; the others only close theirs. Every
    change of the universe is in the event log."""

    source: Literal["config", "scanner"] = Field("config", description="'config': the strategies listed only.")
    allowlist: list[str] = Field(default_factory=list, description="The pairs a scanner-chosen universe may hold.")
    top: Annotated[int, Field(ge=1, le=50)] = Field(3, description="How many pairs the universe holds.")
    quote: str = Field("USD", description="Rank pairs quoted in this asset.")
    size_usd: PositiveDec = Field(Decimal(1000), description="Order size the scanner's liquidity is measured at.")
    rerank_minutes: Annotated[int, Field(ge=1, le=43200)] = Field(60, description="Market minutes between ranks.")
    warmup_candles: Annotated[int, Field(ge=2, le=10000)] = Field(
        30, description="Candles each pair needs before the first ranking."
    )
    kind: str = Field("ema_cross", description="The strategy run on each pair of the universe.")
    params: dict[str, int | bool | str | Decimal] = Field(default_factory=dict)
    order_quote_amount: PositiveDec = Field(Decimal(1000), description="Amount spent per entry.")

    @field_validator("allowlist")
    @classmethod
    def _pairs(cls, values: list[str]) -> list[str]:
        return sorted({_pair_name(v) for v in values})

    @model_validator(mode="after")
    def _needs_allowlist(self) -> Self:
        if self.source == "scanner" and not self.allowlist:
            raise ValueError("a scanner-chosen universe needs an allowlist of the pairs it may hold")
        if self.source == "scanner":
            try:
                strategy_class(self.kind).validate(self.params, base=None)
            except ParamError as exc:
                raise ValueError(f"universe strategy: {exc}") from None
        return self


class McpConfig(_Section):
    read_only: bool = Field(False, description="Register only read-only MCP tools.")
    token_env: str = Field("TRADING_MCP_TOKEN", description="Environment variable holding the HTTP bearer token.")
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host headers run --mcp-http accepts besides the loopback names and the bound address "
        "(HOST, HOST:PORT or HOST:*; added to --allowed-host). Binding beyond loopback still needs --allow-remote.",
    )
    allowed_origins: tuple[str, ...] = Field(
        (),
        description="Origin headers run --mcp-http accepts besides the loopback origins "
        "(http(s)://HOST[:PORT]; added to --allowed-origin).",
    )


class Config(_Section):
    """The whole configuration."""

    mode: Literal["paper", "live"] = Field("paper", description="live also needs --live and TRADING_MCP_ALLOW_LIVE=1.")
    data_dir: Path = Field(
        default_factory=home,
        description="Where the SQLite state and tokens live (default: the user's data folder, as platformdirs names "
        "it: ~/.local/share/trading-mcp on Linux; $TRADING_MCP_HOME overrides it), whatever folder the command is "
        "started from.",
    )
    quote_currency: str = Field("USD", description="Currency equity and PnL are reported in.")
    strategy_paths: list[Path] = Field(
        default_factory=list,
        description="Your own strategies: .py files, or folders of them, whose Strategy subclasses join the "
        "built-in kinds (relative to the config file's folder). A file that fails to load is reported and left out.",
    )
    paper: PaperConfig = Field(default_factory=PaperConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    strategies: list[StrategyConfig] = Field(default_factory=_default_strategies)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    kraken: KrakenConfig = Field(default_factory=KrakenConfig)
    mcp: McpConfig = Field(default_factory=McpConfig)
    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)

    @model_validator(mode="before")
    @classmethod
    def _load_strategy_paths(cls, data: Any) -> Any:
        # [[strategies]] and [universe] are checked against the registry of kinds: the configured strategy files
        # join it first (engine.strategies.discovery; each file once per process, problems recorded, not raised).
        # A path that does not exist is left to the field's own check below, which refuses it.
        if isinstance(data, dict) and isinstance(data.get("strategy_paths"), list | tuple):
            load_strategy_paths(Path(p) for p in data["strategy_paths"] if isinstance(p, str | Path))
        return data

    @field_validator("strategy_paths")
    @classmethod
    def _strategy_paths_exist(cls, paths: list[Path]) -> list[Path]:
        for path in paths:
            if not path.is_dir() and not (path.is_file() and path.suffix == ".py"):
                raise ValueError(f"{path} is neither a folder nor a .py file")
        return paths

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [s.name for s in self.strategies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"strategy names must be unique: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _learning_fits(self) -> Self:
        learning = self.learning
        names = {s.name for s in self.strategies}
        if self.universe.source == "scanner":  # the universe's strategies (engine.runtime.universe.slot_name)
            names |= {f"{self.universe.kind}.{p.replace('/', '-')}" for p in self.universe.allowlist}
        unknown = sorted(set(learning.strategies) - names)
        if unknown:
            raise ValueError(
                f"learning.strategies names {', '.join(unknown)}, not a configured strategy "
                f"(configured: {', '.join(sorted(names)) or 'none'})"
            )
        if not learning.enabled:
            return self
        for strategy in self.strategies:
            lo, hi = learning.bounds(strategy.name)
            if not lo <= strategy.weight <= hi:
                raise ValueError(
                    f"strategy {strategy.name!r}: weight {strategy.weight} lies outside its learning bounds "
                    f"[{lo}, {hi}] (learning.min_weight / max_weight, or learning.strategies.{strategy.name})"
                )
        if self.universe.source == "scanner":
            for name in names - {s.name for s in self.strategies}:
                lo, hi = learning.bounds(name)
                if not lo <= 1 <= hi:
                    raise ValueError(
                        f"universe strategy {name!r}: weight 1 lies outside its learning bounds [{lo}, {hi}]"
                    )
        return self

    @model_validator(mode="after")
    def _groups(self) -> Self:
        members: dict[str, list[StrategyConfig]] = {}
        for strategy in self.strategies:
            if strategy.group is not None:
                members.setdefault(strategy.group, []).append(strategy)
        for group, strategies in members.items():
            names = ", ".join(s.name for s in strategies)
            pairs = sorted({s.pair for s in strategies})
            if len(pairs) > 1:
                trades = ", ".join(f"{s.name} trades {s.pair}" for s in strategies)
                raise ValueError(f"group {group!r}: its strategies must trade one pair ({trades})")
            if len(strategies) < 2:
                raise ValueError(f"group {group!r} has one strategy ({names}): a group votes between two or more")
            if not any(s.weight > 0 for s in strategies):
                raise ValueError(f"group {group!r}: every strategy has weight 0 ({names}), so no vote ever counts")
        return self

    @model_validator(mode="after")
    def _portfolio_pairs_in_account_currency(self) -> Self:
        # A portfolio strategy weighs its pairs against the account's equity and spends its cash: every pair must be
        # quoted in the account currency.
        for strategy in self.strategies:
            if strategy.pairs or issubclass(strategy_class(strategy.kind), PortfolioStrategy):
                foreign = [p for p in strategy.traded_pairs if p.split("/")[-1] != self.quote_currency]
                if foreign:
                    raise ValueError(
                        f"strategy {strategy.name!r}: {', '.join(foreign)} not quoted in the account currency "
                        f"{self.quote_currency} (quote_currency): a portfolio's pairs must be"
                    )
        return self

    @model_validator(mode="after")
    def _timeframes_fit_base(self) -> Self:
        # A strategy's higher timeframes must be whole multiples of its pair's base candles where the configuration
        # names those (Kraken's OHLC interval, a file's interval_minutes); one inferred from a file is checked when
        # the engine reads it (engine.runtime.app).
        bases = self.base_intervals()
        for strategy in self.strategies:
            base = bases.get(strategy.pair)
            if base is not None:
                try:
                    check_timeframes(base, strategy.timeframes, f"strategy {strategy.name!r}")
                except TimeframeError as exc:
                    raise ValueError(str(exc)) from None
        return self

    def base_intervals(self) -> dict[str, int]:
        """The base candle interval (seconds) of each pair whose interval the configuration names."""
        market = self.market
        if market.source == "kraken":
            return {s.pair: self.kraken.ohlc_interval * 60 for s in self.strategies}
        if market.feeds:
            return {
                feed.pair: minutes * 60
                for feed in market.feeds
                if (minutes := feed.aggregate_minutes or feed.interval_minutes) is not None
            }
        return {market.pair: market.interval_minutes * 60} if market.interval_minutes else {}

    @property
    def db_path(self) -> Path:
        return self.data_dir / "engine.db"


def _format_validation(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def config_from_mapping(data: dict[str, object]) -> Config:
    """Validate a mapping (as TOML gives it).

    Raises:
        ConfigError: naming every offending key.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_format_validation(exc)}") from None


def load_config(path: Path | None) -> Config:
    """Read and validate a TOML file; ``None`` gives the defaults.

    Raises:
        ConfigError: when the file is missing, is not TOML, or breaks a rule.
    """
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    paths = data.get("strategy_paths")
    if isinstance(paths, list):  # relative to the file's folder, wherever the command runs
        data["strategy_paths"] = [path.parent / p if isinstance(p, str) else p for p in paths]
    return config_from_mapping(data)
