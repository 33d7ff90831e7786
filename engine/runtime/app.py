"""The engine: wires the parts together, restores saved state, and owns the one task group that runs the loops.

    source ──▶ Trader (venue.on_market, strategies, sizing, risk) ──▶ OrderManager ──▶ ExchangePort
                                                                         ▲                │ events
                                                                         └── Portfolio ◀──┘
    Journal (single SQLite writer thread, event log, change notifications) hears everything.

Restart: balances, positions and round trips are rebuilt by re-booking the stored fills on the opening balances
(so nothing can be counted twice), open orders are handed back to the venue, strategy parameters come from their
latest stored version, and a replayed run resumes at the first event it had not processed after warming the
strategies up on the events before it.
"""

import bisect
import gc
import heapq
import itertools
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import anyio

from engine import faults
from engine.domain.instrument import Instrument
from engine.domain.market_data import Candle, MarketEvent
from engine.domain.orders import Order, OrderCanceled
from engine.exchanges.catalog import default_instruments
from engine.exchanges.paper import FixedBpsSlippage, NoSlippage, PaperExchange
from engine.exchanges.port import ExchangePort, Reconciling, Restorable
from engine.exchanges.replay import ReplayFormat, ReplaySource, detect_format, event_time_ns
from engine.exchanges.replay.columns import CandleColumns
from engine.exchanges.replay.csv_stream import StreamedCandles
from engine.execution.order_manager import OrderManager
from engine.market.catalog_files import canonical_pair_name
from engine.market.higher_candles import TimeframeError, check_timeframes
from engine.market.inferred import infer_instrument, inferred_note
from engine.persistence import Store, StoreReader, StoreWriter, StrategyParamsRecord
from engine.portfolio.curve import EquityCurve
from engine.portfolio.curve_compaction import day_of
from engine.portfolio.equity import DAY_NS
from engine.portfolio.portfolio import Portfolio
from engine.portfolio.reserve import RESERVE_KV, ProfitReserve
from engine.risk.checks import RiskEngine, TradingState
from engine.risk.limits import RiskLimits
from engine.runtime.account_guard import act_on_trips, restore_guard, start_values
from engine.runtime.clock import SimClock, WallClock
from engine.runtime.config import Config, parse_speed
from engine.runtime.control import OFF_LOOP, ControlServer, control_path_for
from engine.runtime.control import supported as control_supported
from engine.runtime.journal import RECENT_FILLS, Journal, _copy_order, jsonable
from engine.runtime.learning import LEARNING_KV, Learning, adapt_weights, restore_learning
from engine.runtime.operator import apply_order_requests, claim_request
from engine.runtime.restart import (
    Decision,
    ParamsChoice,
    RestartError,
    choose_limits,
    choose_params,
    orders_agreeing_with_fills,
)
from engine.runtime.sources import MarketSource, ReplayMarketSource, replay_identity, shipped_sample
from engine.runtime.state_lock import Owner, StateLock
from engine.runtime.strategy_protection import BREAKER_RESETS_KV, act_on_breakers, build_breakers, check_stale
from engine.runtime.trader import StrategySlot, Trader
from engine.runtime.universe import UNIVERSE_KV, Universe, universe_strategies
from engine.strategies import ParamError, PortfolioStrategy, strategy_class

__all__ = ["Engine", "EngineError", "RunOptions", "replay_file"]

WRITER_BACKLOG = 2000  # queued writes after which a resumable run waits for the writer to catch up
EQUITY_CHUNK = 4096  # backtests queue the equity curve for writing in chunks of this many points
COMPACT_EVERY = 32_768  # the equity curve is thinned each time it has grown by this many points
NEVER = 2**63  # later than any candle's close (ns)

T = TypeVar("T")
ExchangeFactory = Callable[[Mapping[str, Instrument], Mapping[str, Decimal], Callable[[], int]], ExchangePort]


class EngineError(Exception):
    """The engine cannot start with this configuration or state (the message says why)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run persists and when it stops.

    ``durable_intents``: wait for each order intent to be committed before sending it (always on for ``run``;
    a backtest only queues it ahead of the send). ``record_every_candle``: persist equity and the replay cursor
    at every candle (resumable), else once at the end. ``max_events``: stop after that many events (tests use
    it to interrupt a run). ``keep_alive``: keep serving after the data ends (the MCP server's mode).
    ``equity_compact_every``: thin the equity curve each time it has grown by this many points (see
    :mod:`engine.portfolio.curve_compaction`; the reports do not change).
    """

    durable_intents: bool = True
    record_every_candle: bool = True
    max_events: int | None = None
    keep_alive: bool = False
    id_prefix: str | None = None
    equity_compact_every: int = COMPACT_EVERY


@dataclass(slots=True)
class EngineState:
    """Counters and timestamps that the facade and diagnostics read."""

    started_wall_ns: int = 0
    cursor: int = 0
    events_this_run: int = 0
    last_event_wall_ns: int | None = None
    loop_lag_s: float = 0.0
    finished: bool = False
    error: str = ""
    opening_balances: dict[str, Decimal] = field(default_factory=dict)


def _sample_source(config: Config) -> ReplayMarketSource:
    market = config.market
    speed = parse_speed(market.speed)
    if market.feeds:
        sources = [
            ReplaySource(
                feed.file,
                pair=feed.pair,
                interval_s=feed.interval_minutes * 60 if feed.interval_minutes else None,
                aggregate_s=feed.aggregate_minutes * 60 if feed.aggregate_minutes else None,
            )
            for feed in market.feeds
        ]
        merged = heapq.merge(*(source.iter_from(0) for source in sources), key=event_time_ns)
        label = "+".join(f"{feed.file.name}:{feed.pair}" for feed in market.feeds)
        identity = replay_identity([(feed.file, feed.pair) for feed in market.feeds])
        return ReplayMarketSource(ReplaySource.from_events(merged, name=label), speed, label, identity=identity)
    path = market.file or shipped_sample()
    interval = market.interval_minutes * 60 if market.interval_minutes else None
    replay = replay_file(path, market.pair, interval)
    return ReplayMarketSource(replay, speed, path.name, identity=replay_identity([(path, market.pair)]))


def replay_file(path: Path, pair: str, interval_s: int | None) -> ReplaySource:
    """A replayed file; a trades file is turned into candles (of ``interval_s``, default one minute), since the
    strategies decide on closed candles. Minutes without a trade get Kraken's own filler candle (the previous
    close, no volume), so the candles are regular in time as Kraken's OHLC is."""
    pair = canonical_pair_name(pair)
    if detect_format(path) is ReplayFormat.TRADES_JSON:
        return ReplaySource(path, pair=pair, aggregate_s=interval_s or 60, fill_gaps=True)
    return ReplaySource(path, pair=pair, interval_s=interval_s)


class Engine:
    """One trading engine; ``async with engine.serve() as facade`` runs it."""

    def __init__(
        self,
        config: Config,
        db_path: Path | None,
        source: MarketSource,
        *,
        instruments: Mapping[str, Instrument] | None = None,
        exchange_factory: ExchangeFactory | None = None,
        options: RunOptions = RunOptions(),
        live_clock: bool = False,
    ) -> None:
        extra = universe_strategies(config)  # a scanner-chosen universe runs a strategy on each allowlisted pair
        self.config = config.model_copy(update={"strategies": [*config.strategies, *extra]}) if extra else config
        self.universe = Universe(config.universe) if config.universe.source == "scanner" else None
        self.db_path = db_path
        self.source = source
        self.instruments = dict(instruments or default_instruments())
        self.options = options
        self.clock = WallClock() if live_clock else SimClock()
        self._exchange_factory = exchange_factory or self._paper_factory
        self.state = EngineState()
        # In a resumable run, what the engine waits for (an order intent before its send, an acknowledged change,
        # the halt latch) must survive a power loss of the machine, not only the death of the process.
        self.writer = StoreWriter(db_path, sync_flushes=options.durable_intents)
        self.done = anyio.Event()
        self.lock = StateLock(db_path) if db_path is not None else None
        self.control: ControlServer | None = None
        self.reader: StoreReader | None = None
        self.equity_curve = EquityCurve()
        self._equity_written = 0
        self._first_run = False
        # Adaptive strategy weights ([learning]; engine.runtime.learning): None while learning is off.
        self.learning: Learning | None = None
        # What a user must be told about this run in one line each (an instrument inferred from the data).
        self.notes: list[str] = []
        self._infer_unknown_pairs()
        self._check_pairs()
        self._check_timeframes()

    @classmethod
    def from_config(
        cls,
        config: Config,
        db_path: Path | None,
        *,
        source: MarketSource | None = None,
        options: RunOptions = RunOptions(),
        **kwargs: Any,
    ) -> "Engine":
        """Build an engine; the market source defaults to the configured replay file (or the shipped sample)."""
        return cls(config, db_path, source or _sample_source(config), options=options, **kwargs)

    def _infer_unknown_pairs(self) -> None:
        """A replayed pair no catalogue knows gets an instrument inferred from its prices (and a note)."""
        source = self.source
        if not isinstance(source, ReplayMarketSource):
            return
        wanted = {p for s in self.config.strategies for p in s.traded_pairs} - set(self.instruments)
        for pair in sorted(wanted):
            prices = (
                e.close
                for e in itertools.islice(source.replay.iter_from(0), 5000)
                if isinstance(e, Candle) and e.pair == pair
            )
            inferred = infer_instrument(pair, prices)
            if inferred is not None:
                self.instruments[inferred.pair] = inferred
                self.notes.append(inferred_note(inferred))
        self._note_pairs_without_data(source)

    def _note_pairs_without_data(self, source: ReplayMarketSource) -> None:
        """A strategy whose pair the replayed data never carries would sit idle in silence: say so."""
        replay = source.replay
        if len(replay) > 200_000:
            return  # too long to read through at start-up just for this
        events = replay.events
        present = {events.pair} if isinstance(events, CandleColumns | StreamedCandles) else {e.pair for e in events}
        for strategy in self.config.strategies:
            for pair in strategy.traded_pairs:
                if pair not in present:
                    carried = ", ".join(sorted(present)) or "no pair"
                    self.notes.append(
                        f"strategy {strategy.name} trades {pair}, which the replayed data does not carry "
                        f"({carried}): it will not trade (name the data's pair with --pair, or the strategy's pair)"
                    )

    def _check_timeframes(self) -> None:
        """A strategy's higher timeframes that its pair's base candles cannot build are refused now, with the
        data's interval (the configuration checked the intervals it names itself)."""
        wanted = [(s, s.timeframes) for s in self.config.strategies]
        wanted = [(s, frames) for s, frames in wanted if frames]
        if not wanted:
            return
        bases = self.config.base_intervals()
        source = self.source
        if isinstance(source, ReplayMarketSource):
            bases = {}
            for event in itertools.islice(source.replay.iter_from(0), 5000):
                if isinstance(event, Candle):
                    bases.setdefault(event.pair, event.interval_s)
        for strategy, frames in wanted:
            base = bases.get(strategy.pair)
            if base is None:
                continue
            try:
                check_timeframes(base, frames, f"strategy {strategy.name!r} on {strategy.pair}")
            except TimeframeError as exc:
                raise EngineError(str(exc)) from None

    def _check_pairs(self) -> None:
        for strategy in self.config.strategies:
            for pair in strategy.traded_pairs:
                if pair not in self.instruments:
                    known = ", ".join(sorted(self.instruments))
                    raise EngineError(f"strategy {strategy.name!r} trades unknown pair {pair!r} (known: {known})")

    def _paper_factory(
        self, instruments: Mapping[str, Instrument], balances: Mapping[str, Decimal], clock: Callable[[], int]
    ) -> ExchangePort:
        paper = self.config.paper
        slippage = FixedBpsSlippage(paper.slippage_bps) if paper.slippage_bps else NoSlippage()
        return PaperExchange(
            instruments,
            balances,
            clock=clock,
            slippage=slippage,
            fee_volume_30d=paper.fee_volume_30d,
            volume_participation=paper.volume_participation,
        )

    @property
    def mode(self) -> str:
        return "live" if self.exchange.is_live else "paper"

    async def read(self, fn: Callable[[Store], T]) -> T:
        """Run a read of the store off the event loop and out of the writer's way.

        A file store is read on the reader's own connection once the writer has committed what the engine
        submitted before (reads see the engine's own writes; an order intent never waits behind a read). An
        in-memory store has one connection: it is read on the writer's thread, in order with the writes.
        """
        started = perf_counter()
        try:
            reader = self.reader
            if reader is None:
                return await self.writer.call(fn)
            await self.writer.barrier()
            return await reader.call(fn)
        finally:
            waits = OFF_LOOP.get()
            if waits is not None:
                waits.append(perf_counter() - started)  # asleep, not holding the loop: see ReadBudget

    # -- start-up ---------------------------------------------------------------------------------------------
    async def _restore(self) -> None:
        """Rebuild the engine from the saved state (everything but the venue's open orders: see
        :meth:`_take_back_open_orders`, which needs the market data the warm-up primes)."""
        saved = await self.read(_load_saved)
        kv = saved["kv"]
        first_run = "opening_balances" not in kv
        self._first_run = first_run
        opening = (
            {k: Decimal(v) for k, v in kv["opening_balances"].items()}
            if not first_run
            else dict(self.config.paper.starting_balances)
        )
        self.state.opening_balances = opening
        try:
            agreed = orders_agreeing_with_fills(saved["orders"], saved["fills"])
        except RestartError as exc:
            raise EngineError(f"the state in {self.db_path} cannot be resumed: {exc}") from None
        self.portfolio = Portfolio(self.instruments, opening, self.config.quote_currency)
        # Fills re-booked after a restart keep the account-currency values they were given when they happened
        # (today's marks would value an ETHXBT fee or profit differently).
        self.portfolio.preset_fill_values(saved["fill_values"])
        for fill in saved["fills"]:
            self.portfolio.apply_fill(fill)
        self.journal = Journal(self.writer, self.portfolio, self.clock.now_ns, durable=self.options.durable_intents)
        self.journal.recent_fills.extend(saved["fills"][-RECENT_FILLS:])
        self.exchange = self._exchange_factory(
            self.instruments,
            {a: b.total for a, b in self.portfolio.balances.assets().items()},
            self.clock.now_ns,
        )
        if isinstance(self.exchange, Restorable):
            self.exchange.seed_fee_volume(saved["fills"])  # the fee tier follows the account's past 30 days
        self._check_identity(kv)
        limits = choose_limits(
            self.config.risk.limits, self.config.risk.caps, kv.get("risk_limits"), kv.get("configured_risk_limits")
        )
        self.risk = RiskEngine(limits.value, self.config.risk.caps)
        if kv.get("trading_state") in ("paused", "halted"):
            self.risk.state = TradingState(kv["trading_state"])
            self.risk.halt_reason = str(kv.get("halt_reason", ""))
            self.risk.halted_by = "operator" if kv.get("halted_by") == "operator" else "client"
        elif kv.get("trading_state") == "reducing":
            self.risk.state = TradingState.REDUCING
            self.risk.halt_reason = str(kv.get("halt_reason", ""))
        # The account rules ([risk.rules]) and their latch: peak, the day's start, what tripped.
        self.account_guard, self._rule_notes = restore_guard(
            self.config.risk.rules, self.config.risk.rule_caps, kv, saved["equity"]
        )
        if self.risk.state is TradingState.REDUCING:
            self.account_guard.state.reducing = True  # left only when the rule sees the drawdown recover
        prefix = self.options.id_prefix or kv.get("id_prefix") or secrets.token_hex(3)
        self.oms = OrderManager(
            self.exchange, self.portfolio, self.journal, prefix, may_send=lambda: self.risk.may_trade
        )
        orders = agreed.value
        self.oms.restore(orders, _next_sequence(prefix, orders, int(kv.get("order_sequence", 0))))
        self.slots, choices = self._build_slots(saved["params"], saved["config_params"])
        if self.universe is not None:
            self.universe.restore(kv.get(UNIVERSE_KV))
            self.universe.apply(self.slots)
        # The learned weights in force (or the configured ones, with learning off), before anything is sized.
        self.learning = restore_learning(self, kv.get(LEARNING_KV))
        self.trader = Trader(
            self.instruments,
            self.exchange,
            self.portfolio,
            self.risk,
            self.oms,
            self.slots,
            self.clock.now_ns,
            refusal_sink=self.journal,  # every refused order becomes an order_refused event
            breakers=build_breakers(self.config),
            reserve=ProfitReserve.restore(
                self.config.risk.reserve_profit_pct, kv.get(RESERVE_KV), self.portfolio.round_trips
            )
            if self.config.risk.reserve_profit_pct or kv.get(RESERVE_KV)
            else None,
        )
        if self.trader.reserve is not None:
            self.journal.set_kv(RESERVE_KV, self.trader.reserve.saved())  # the share in force from now on
        self.breaker_resets: dict[str, int] = dict(kv.get(BREAKER_RESETS_KV) or {})
        self.trader.replay_breakers(self.breaker_resets)
        self.trader.restore_entries()
        self.trader.prepare_warm(saved["fills"])
        self.equity_curve = EquityCurve()
        self.equity_curve.extend(saved["equity"])
        self.equity_curve.compact()  # in memory only: the state file's copy is thinned by the next run's pass
        self._equity_written = len(self.equity_curve)
        self.state.cursor = int(kv.get("cursor", 0))
        self._record_start(first_run, prefix, agreed.notes, limits, choices)

    def _check_identity(self, kv: Mapping[str, Any]) -> None:
        """A state file follows one account (paper or live) and one data source; another is refused cleanly.

        Raises:
            EngineError: naming what the state belongs to, what this run is, and the way to a fresh state file.
        """
        fresh = f"use --db with another file for a fresh state (or --reset to discard this one: {self.db_path})"
        saved_mode = kv.get("mode")
        if saved_mode is not None and saved_mode != self.mode:
            raise EngineError(
                f"the state in {self.db_path} belongs to a {saved_mode} account; this run is {self.mode}: "
                f"paper and live state never mix; {fresh}"
            )
        saved_source = kv.get("source_id")
        if saved_source is None and "source" in kv:
            # Older state files recorded the source's description only.
            legacy = self.source.description.split(" (")[0]
            saved_source = self.source.identity if kv["source"] == legacy else str(kv["source"])
        if saved_source is not None and saved_source != self.source.identity:
            raise EngineError(
                f"the state in {self.db_path} follows {saved_source}; this run is {self.source.identity}: "
                f"a state file follows one data source (its replay position belongs to it); {fresh}"
            )

    def _record_start(
        self,
        first_run: bool,
        prefix: str,
        repairs: list[dict[str, object]],
        limits: Decision[RiskLimits],
        choices: list[tuple[StrategySlot, ParamsChoice]],
    ) -> None:
        """Save what this start decided, as one unit of work (a crash leaves all of it or none)."""
        now = self.clock.now_ns()
        values: dict[str, object] = {
            "source_id": self.source.identity,
            "configured_risk_limits": self.config.risk.limits.model_dump(mode="json"),
            "risk_limits": self.risk.limits.model_dump(mode="json"),
            **start_values(self),
        }
        if first_run:
            values.update(opening_balances=self.state.opening_balances, id_prefix=prefix, mode=self.mode)
        kv = {key: jsonable(value) for key, value in values.items()}
        params = [
            (slot.name, dict(slot.strategy.values), slot.enabled, choice.save_as)
            for slot, choice in choices
            if choice.save_as is not None
        ]
        repaired = {str(note["client_id"]) for note in repairs if "status_before" in note}
        snapshots = [_copy_order(order) for cid, order in self.oms.orders.items() if cid in repaired]

        def write(store: Store) -> None:
            with store.atomic():
                for key, value in kv.items():
                    store.set_kv(key, value)
                for order in snapshots:
                    store.upsert_order(order)
                for name, param_values, enabled, source in params:
                    store.save_strategy_params(name, param_values, enabled, now, source, "applied at start")

        self.writer.submit(write)
        for note in repairs:
            self.journal.event("order_repaired", "engine", note)
        for note in limits.notes:
            self.journal.event("limits_at_start", "engine", note)
        for detail in self._rule_notes:
            self.journal.event("limits_at_start", "engine", {"detail": detail})
        for slot, choice in choices:
            for note in choice.notes:
                self.journal.event("strategy_params_at_start", "engine", {"strategy": slot.name, **note})
        self.journal.event(
            "engine_started",
            "engine",
            {
                "mode": self.mode,
                "source": self.source.description,
                "resumed_at": self.state.cursor,
                "first_run": first_run,
            },
        )

    def _take_back_open_orders(self, latest: Mapping[str, MarketEvent]) -> None:
        """Hand the open orders back to a venue that lost them with the process (the simulated one), primed with
        the last market data before the restart point, and apply what it answers (accepted, or canceled with
        the reason): one order that cannot be taken back never stops a restart."""
        if not isinstance(self.exchange, Restorable):
            return
        open_orders = self.oms.open_orders()
        if not open_orders and not latest:
            return
        balances = {a: b.total for a, b in self.portfolio.balances.assets().items()}
        for event in self.exchange.restore(balances, open_orders, latest=latest.values()):
            if isinstance(event, OrderCanceled):
                self.journal.event(
                    "order_not_restored", "engine", {"client_id": event.client_id, "reason": event.reason}
                )
            self.oms.on_event(event)

    def _build_slots(
        self, saved: Mapping[str, StrategyParamsRecord], saved_config: Mapping[str, StrategyParamsRecord]
    ) -> tuple[list[StrategySlot], list[tuple[StrategySlot, ParamsChoice]]]:
        """The configured strategies with their parameters (see :func:`choose_params`), and each slot's choice."""
        slots = []
        choices = []
        for cfg in self.config.strategies:
            cls = strategy_class(cfg.kind)
            record, configured = saved.get(cfg.name), saved_config.get(cfg.name)
            bounds = {name: (b.minimum, b.maximum) for name, b in self.config.tuning.bounds.get(cfg.name, {}).items()}
            choice = choose_params(
                cls,
                (cfg.params, cfg.enabled),
                None if record is None else (record.params, record.enabled),
                None if configured is None else (configured.params, configured.enabled),
                bounds,
            )
            version = record.version if record is not None else 0
            strategy = cls(choice.values)
            if isinstance(strategy, PortfolioStrategy):
                try:
                    strategy.bind_pairs(cfg.traded_pairs)
                except ParamError as exc:
                    raise EngineError(f"strategy {cfg.name!r}: its parameters do not fit its pairs: {exc}") from None
            slot = StrategySlot(
                name=cfg.name,
                pair=cfg.pair,
                strategy=strategy,
                enabled=choice.enabled,
                weight=cfg.weight,
                order_quote_amount=cfg.order_quote_amount,
                group=cfg.group or "",
                pairs=cfg.traded_pairs if issubclass(cls, PortfolioStrategy) else (),
                # The store numbers versions itself (the next one); a choice saved at start is that one.
                version=version + (1 if choice.save_as is not None else 0),
            )
            slots.append(slot)
            choices.append((slot, choice))
        return slots, choices

    def _save_params(self, slot: StrategySlot, source: str, note: str) -> None:
        params = dict(slot.strategy.values)
        enabled = slot.enabled
        ts = self.clock.now_ns()
        self.writer.submit(lambda store: store.save_strategy_params(slot.name, params, enabled, ts, source, note))

    async def _reconcile(self, venue: Reconciling) -> None:
        """Apply what the venue reports: adopt unknown orders, replay missed events, correct balances."""
        # From the store, not memory: the order manager keeps only recent closed orders.
        stored_orders, fills = await self.read(lambda s: (s.load_orders(), s.load_fills()))
        known = {str(f.trade_id) for f in fills}
        local = {o.client_id: o for o in stored_orders}
        local.update(self.oms.orders)  # the live objects, for the orders still in memory
        report = await venue.reconcile(list(local.values()), known)
        for order in report.adopt:
            self.oms.restore([order], self.oms.sequence)
            self.journal.order_changed(order)
            self.journal.event("order_adopted", "reconciliation", {"client_id": order.client_id, "pair": order.pair})
        for event in report.events:
            self.oms.on_event(event)
        if report.balances is not None and self._first_run and not self.oms.orders:
            # A live account's opening balances are what the venue holds when the engine first sees it.
            self.state.opening_balances = dict(report.balances)
            self.journal.set_kv("opening_balances", self.state.opening_balances)
        if report.balances is not None:
            books = self.portfolio.balances
            for asset, amount in report.balances.items():
                if books.total(asset) != amount:
                    self.journal.event(
                        "balance_corrected",
                        "reconciliation",
                        {"asset": asset, "books": books.total(asset), "venue": amount},
                    )
                    books.set_total(asset, amount)
            corrected = books.assets()
            self.writer.submit(lambda s: s.set_balances(corrected))
        for note in report.notes:
            self.journal.event("reconciliation", "reconciliation", {"note": note})

    # -- the loops --------------------------------------------------------------------------------------------
    def _warm_up(self) -> dict[str, MarketEvent]:
        """Feed the events before the cursor to the strategies only (no venue, no orders) after a restart; return
        the last of them per pair (the prices the venue's restored orders are held at)."""
        latest: dict[str, MarketEvent] = {}
        if self.state.cursor == 0 or not self.source.replayable:
            return latest
        for event in self.source.history(self.state.cursor):
            self.clock.advance_to(event.close_ns if isinstance(event, Candle) else event.ts_ns)
            self.trader.warm(event)
            latest[event.pair] = event
        return latest

    async def _market_loop(self) -> None:
        # The backtest's hot loop: everything it touches per event is bound to a local first, and the counters
        # live in locals, stored back into ``state`` before anything can read them (an await, the batch's end).
        from time import perf_counter

        from engine.domain.market_data import NS_PER_SECOND

        options = self.options
        oms = self.oms
        risk = self.risk
        per_candle = options.record_every_candle
        writer = self.writer
        curve_ts, curve_eq = self.equity_curve.ts_ns, self.equity_curve.equity
        state = self.state
        max_events = options.max_events
        on_market = self.trader.on_market
        universe = self.universe
        advance_clock = self.clock.advance_to  # a no-op for the wall clock; the sim clock never goes back
        active = TradingState.ACTIVE
        reducing = TradingState.REDUCING  # exits only: the strategies still run, the risk checks refuse buys
        rules_update = self.account_guard.update  # a few comparisons per candle; acts only when a rule trips
        # Adaptive weights tick on engine time: one integer comparison per candle (never, with learning off).
        learn_at = self.learning.next_ns if self.learning is not None else NEVER
        breaker_trips = self.trader.breaker_trips  # filled by the trader when a strategy's breaker trips
        # Equity is read at every candle but only recomputed when a fill or a held pair's mark moved it.
        equity_now = self.portfolio.equity_meter().value
        # Equity points go to the writer in chunks of at least EQUITY_CHUNK, and at most every flush_every
        # seconds: each hand-over costs the writer thread a few GIL round trips, which take up to the
        # interpreter's switch interval each while this loop runs; fewer, larger chunks let it keep up.
        flush_every = 0.05
        flush_at = len(curve_ts) + EQUITY_CHUNK
        flush_after = perf_counter() + flush_every
        # Past COMPACT_EVERY points the curve's complete days are thinned (the reports unchanged): memory and the
        # state file stay flat however long the run (checked with the chunked flush, every EQUITY_CHUNK points).
        compact_at = len(curve_ts) + options.equity_compact_every
        cursor = state.cursor
        seen = state.events_this_run
        stopped = False  # by max_events
        try:
            async with aclosing(self.source.stream(cursor)) as stream:
                async for batch in stream:
                    for event in batch:
                        if type(event) is Candle:
                            ts = event.ts_ns + event.interval_s * NS_PER_SECOND  # close_ns, without the call
                            advance_clock(ts)
                            if universe is not None and ts >= universe.next_ns:
                                state.cursor = cursor  # ranked on the candles before this one, never on it
                                universe.rerank(self, ts, event.interval_s)
                            if ts >= learn_at:
                                # Decided on the round trips closed before this candle, saved before it trades.
                                state.cursor, state.events_this_run = cursor, seen
                                with anyio.CancelScope(shield=True):
                                    learn_at = await adapt_weights(self, ts)
                            requests = on_market(event, risk.state is active or risk.state is reducing)
                            if requests:
                                state.cursor, state.events_this_run = cursor, seen
                                # The shield keeps a stop (Ctrl-C) from landing between an order's intent and its
                                # send, or before the cursor moves; nothing else in processing an event awaits.
                                with anyio.CancelScope(shield=True):
                                    for request in requests:
                                        await oms.submit(request)
                            if breaker_trips:
                                with anyio.CancelScope(shield=True):
                                    await act_on_breakers(self)
                            cursor += 1
                            seen += 1
                            equity = equity_now()
                            trips = rules_update(ts, equity)
                            if trips is not None:
                                state.cursor, state.events_this_run = cursor, seen
                                with anyio.CancelScope(shield=True):
                                    await act_on_trips(self, trips)
                            curve_ts.append(ts)
                            curve_eq.append(equity)
                            if per_candle:
                                writer.submit(
                                    partial(_record_step, ts_ns=ts, equity=equity, cursor=cursor, sequence=oms.sequence)
                                )
                                faults.hit("event")
                                if len(curve_ts) >= compact_at:
                                    compact_at = self._compact_equity()
                            elif len(curve_ts) >= flush_at:
                                flush_at = len(curve_ts) + EQUITY_CHUNK
                                if len(curve_ts) >= compact_at:
                                    compact_at = self._compact_equity()
                                    flush_at = len(curve_ts) + EQUITY_CHUNK
                                elif perf_counter() >= flush_after:
                                    self._flush_equity_chunk()
                                    flush_after = perf_counter() + flush_every
                        else:
                            advance_clock(event.ts_ns)
                            requests = on_market(event, risk.state is active or risk.state is reducing)
                            if requests:
                                state.cursor, state.events_this_run = cursor, seen
                                # The shield keeps a stop (Ctrl-C) from landing between an order's intent and its
                                # send, or before the cursor moves; nothing else in processing an event awaits.
                                with anyio.CancelScope(shield=True):
                                    for request in requests:
                                        await oms.submit(request)
                            if breaker_trips:
                                with anyio.CancelScope(shield=True):
                                    await act_on_breakers(self)
                            cursor += 1
                            seen += 1
                            if per_candle:
                                if cursor % 256 == 0:
                                    writer.submit(partial(_record_cursor, cursor=cursor))
                                faults.hit("event")
                        if max_events is not None and seen >= max_events:
                            stopped = True
                            break
                    state.cursor, state.events_this_run = cursor, seen
                    if stopped:
                        break
                    if per_candle and writer.stats.queue_depth > WRITER_BACKLOG:
                        # Back-pressure: a replay faster than the disk would grow the queue without bound, and the
                        # next durable order intent would then wait for all of it.
                        await writer.flush(sync=False)
        finally:
            state.cursor, state.events_this_run = cursor, seen
        if not per_candle:
            # What the chunks have not taken yet (and the journal's staged writes) goes now, not at shutdown: an
            # engine that keeps serving after its data ends must not hold them back.
            self._flush_equity_chunk()
        if len(curve_ts) >= compact_at:
            self._compact_equity()
        if not stopped:
            state.finished = True

    def _compact_equity(self) -> int:
        """Thin the equity curve's complete days (:meth:`EquityCurve.compact`), in memory and in the state file
        (every point is written first; the rewrite is one transaction); return the length to check again at."""
        curve = self.equity_curve
        if not self.options.record_every_candle:
            self._flush_equity_chunk()
        if curve.compact():
            cut_ns = day_of(curve.ts_ns[-1]) * DAY_NS + 1  # the current day's first possible stamp: left whole
            head = bisect.bisect_left(curve.ts_ns, cut_ns)
            kept_ts, kept_eq = curve.ts_ns[:head], curve.equity[:head]
            self.writer.submit(lambda s: s.replace_equity_before(cut_ns, kept_ts, kept_eq))
        self._equity_written = len(curve)
        return len(curve) + self.options.equity_compact_every

    def _flush_equity_chunk(self) -> None:
        """Queue the equity points not yet written (backtests write the curve in chunks, off the hot path),
        with the journal's staged writes, as one write."""
        curve = self.equity_curve
        start = self._equity_written
        # Two list slices (ints and Decimals, which the garbage collector ignores), not a tuple per point.
        ts_ns, equity = curve.ts_ns[start:], curve.equity[start:]
        self._equity_written = len(curve.ts_ns)
        self.journal.equity_points(ts_ns, equity)

    async def _apply_operator_requests(self) -> None:
        """Apply what the operator asked from the shell (``trading-mcp halt`` / ``resume``; see
        :mod:`engine.runtime.operator`): at start before trading, then within 0.2 s while running."""
        if self.db_path is None:
            return
        from engine.runtime.facade import EngineFacade

        while (claimed := claim_request(self.db_path)) is not None:
            request, claim = claimed
            facade = EngineFacade(self)
            if request.action == "halt":
                await facade.emergency_stop(
                    flatten=request.flatten,
                    source="operator:cli",
                    reason=request.reason or "halted by the operator (trading-mcp halt)",
                    by="operator",
                )
            elif self.risk.state is not TradingState.ACTIVE:
                await facade.resume(source="operator:cli", by="operator")
            else:
                self.journal.event("resume_trading", "operator:cli", {"result": "trading was already active"})
                await self.writer.flush()
            claim.unlink(missing_ok=True)
        # One order or one position (`trading-mcp cancel` / `close`), after any halt: every such request counts.
        await apply_order_requests(self.db_path, EngineFacade(self))

    async def _notifier_loop(self) -> None:
        while True:
            await self._apply_operator_requests()
            check_stale(self)
            if self.trader.breaker_trips:
                await act_on_breakers(self)
            before = anyio.current_time()
            await anyio.sleep(0.2)
            self.state.loop_lag_s = max(0.0, anyio.current_time() - before - 0.2)
            self.journal.publish()

    async def _finish(self) -> None:
        """Persist what a run keeps only in memory, then drain the writer."""
        state = self.state
        if not self.options.record_every_candle:
            self._flush_equity_chunk()
        cursor, seq = state.cursor, self.oms.sequence
        balances = self.portfolio.balances.assets()
        reserve = self.trader.reserve
        if reserve is not None:
            self.trader.reserve_now()
        saved_reserve = reserve.saved() if reserve is not None else None

        def final(store: Store) -> None:
            store.set_kv("cursor", cursor)
            store.set_kv("order_sequence", seq)
            store.set_balances(balances)
            if saved_reserve is not None:
                store.set_kv(RESERVE_KV, saved_reserve)

        self.writer.submit(final)
        self.journal.event(
            "engine_stopped",
            "engine",
            {"cursor": cursor, "finished": state.finished, "equity": self.portfolio.equity()},
        )
        await self.writer.flush()

    @asynccontextmanager
    async def serve(self) -> AsyncIterator["EngineFacade"]:
        """Start everything, yield the facade, and stop cleanly (state saved) when the block exits."""
        from engine.runtime.facade import EngineFacade

        self.state.started_wall_ns = WallClock().now_ns()
        # One engine per state file: taken before the store is opened (its migrations write), released last.
        if self.lock is not None:
            self.lock.acquire(Owner.this_process())
        try:
            self.writer.start()
            if self.db_path is not None:
                self.reader = StoreReader(self.db_path)
                self.reader.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._stop_store)
            raise
        try:
            await self._restore()
            latest = await anyio.to_thread.run_sync(self._warm_up) if self.state.cursor > 10000 else self._warm_up()
            self._take_back_open_orders(latest)
            # Everything alive now (modules, schemas, the replayed data, restored state) lives as long as the
            # process: moved out of the collector's reach, a full collection no longer walks it, which took a
            # full garbage-collection pass from ~100 ms to ~12 ms, time that would land inside an emergency stop.
            # (Unfrozen again when the engine stops, so that an embedding process loses nothing.)
            gc.freeze()
            await self.exchange.start()
            try:
                if isinstance(self.exchange, Reconciling):
                    await self._reconcile(self.exchange)
                # What the operator asked while the engine was down (a halt, a resume) applies before trading.
                await self._apply_operator_requests()
                facade = EngineFacade(self)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._run_market)
                    tg.start_soon(self._notifier_loop)
                    await self._start_control(tg, facade)
                    try:
                        yield facade
                    finally:
                        if self.control is not None:
                            with anyio.CancelScope(shield=True):
                                await self.control.close_connections()
                        tg.cancel_scope.cancel()
            finally:
                # Whatever ended the run (the data, a stop, an error), the venue is released and the state saved.
                with anyio.CancelScope(shield=True):
                    await self.exchange.stop()
                    await self._finish()
        finally:
            gc.unfreeze()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._stop_store)

    def _stop_store(self) -> None:
        """Stop the reader and the writer (which drains and commits), then let the next engine in."""
        try:
            if self.reader is not None:
                self.reader.stop()
                self.reader = None
            self.writer.stop()
        finally:
            self._release_lock()

    async def _start_control(self, tg: anyio.abc.TaskGroup, facade: "EngineFacade") -> None:
        """Serve the facade on the control socket (other processes of this user: an MCP gateway, an attaching
        serve), and record where in the state lock. Trading never depends on it: a socket that cannot be made
        is logged and done without."""
        if self.db_path is None or self.lock is None or not control_supported():
            return
        self.control = ControlServer(facade, control_path_for(self.db_path))
        try:
            path = await tg.start(self.control.serve)
        except OSError as exc:
            self.journal.event("control_socket_unavailable", "engine", {"error": str(exc)})
            self.control = None
            return
        self.lock.update(control=str(path))

    def _release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def announce_endpoint(self, url: str) -> None:
        """Record the MCP endpoint this engine serves in its state lock, so that a second ``serve`` on the same
        state file can attach to it instead of being refused."""
        if self.lock is not None:
            self.lock.update(mcp_url=url)

    async def _run_market(self) -> None:
        try:
            await self._market_loop()
        finally:
            self.done.set()

    async def run(self) -> None:
        """Trade until the data runs out (or ``max_events``), then stop cleanly."""
        async with self.serve():
            await self.done.wait()


def _next_sequence(prefix: str, orders: list[Order], saved: int) -> int:
    """The highest order number used so far: the saved counter may lag an intent written just before a crash."""
    highest = saved
    for order in orders:
        head, _, number = order.client_id.rpartition("-")
        if head == prefix and number.isdigit():
            highest = max(highest, int(number))
    return highest


def _record_cursor(store: Store, cursor: int) -> None:
    store.set_kv("cursor", cursor)


def _record_step(store: Store, ts_ns: int, equity: Decimal, cursor: int, sequence: int) -> None:
    store.append_equity(ts_ns, equity)
    store.set_kv("cursor", cursor)
    store.set_kv("order_sequence", sequence)


def _load_saved(store: Store) -> dict[str, Any]:
    return {
        "kv": store.load_kv(),
        "fills": store.load_fills(),
        "fill_values": store.load_fill_values(),
        "orders": store.load_orders(),
        "equity": store.load_equity(),
        "params": store.latest_strategy_params(),
        "config_params": store.latest_strategy_params("config"),
    }


from engine.runtime.facade import EngineFacade  # noqa: E402  (the facade needs Engine; imported for typing)
