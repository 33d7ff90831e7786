"""The engine's facade: the one surface the CLI and the MCP server use to read and steer a running engine.

Reads come from memory (fast while the engine is busy); the event log is read through the writer thread.
Every state-changing call is validated first (a refusal raises a :mod:`engine.errors` exception and changes
nothing), then applied, then written to the event log with its arguments, its result and ``source`` (who asked).
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine import faults
from engine.domain.market_data import BookSnapshot, Candle, Ticker, TradeTick
from engine.domain.orders import ClientOrderId, Order, OrderSide, OrderType
from engine.errors import FacadeError, InvalidRequest, LimitExceeded, NotAllowed, NotFound
from engine.exchanges.port import ExchangeUnavailable, OrderRefused, OrderRequest
from engine.market.catalog_files import canonical_pair_name
from engine.persistence import Store
from engine.portfolio.performance import compute_group_reports, compute_report, compute_trade_report
from engine.risk.account_rules import AccountRules, propose_rules
from engine.risk.checks import TradingState
from engine.risk.limits import RiskLimits
from engine.runtime import diagnostics
from engine.runtime.account_guard import RULES_KV, after_operator_resume, rule_views
from engine.runtime.journal import ChangeCallback, jsonable
from engine.runtime.learning import RULE
from engine.runtime.markets_view import MarketsView, engine_scan
from engine.runtime.strategy_protection import BREAKER_RESETS_KV, breaker_views, guard_views
from engine.runtime.views import (
    AssetBalanceView,
    BacktestView,
    BalanceView,
    DiagnosisView,
    EmergencyStopView,
    EventView,
    FillView,
    LearningView,
    MarketView,
    OptimizeView,
    OrdersView,
    OrderView,
    ParamChange,
    ParamView,
    PerformanceView,
    PositionsView,
    PositionView,
    RiskLimitView,
    RiskView,
    StatusView,
    StrategiesView,
    StrategyView,
    TradesView,
    TradingStateView,
    TuneResultView,
    UnvaluedRealizedView,
    WhatIfView,
)
from engine.strategies import ParamError, ParamValue, PortfolioStrategy

if TYPE_CHECKING:
    from engine.runtime.app import Engine
    from engine.runtime.trader import StrategySlot

__all__ = ["Authority", "EngineFacade", "ProgressCallback", "iso"]

ProgressCallback = Callable[[float, float, str], Awaitable[None]]
Authority = Literal["operator", "client"]
"""Who asks for a change of the trading state: the operator (their shell: ``trading-mcp halt`` / ``resume``) or a
client (the MCP client, or code using the facade). The operator outranks the client."""

PROGRESS_STEP = Decimal("0.0001")  # status progress: a fraction to 4 decimals (100 % only when done)
_LIMIT_TEXT = {
    "max_order_qty": "Largest single order, in base units.",
    "max_order_notional": "Largest single order value, in the quote currency.",
    "max_pair_notional": "Largest exposure in one pair (positions + open buys).",
    "max_total_notional": "Largest exposure over all pairs.",
    "max_open_orders": "Most open orders at once.",
    "max_orders_per_minute": "Most orders accepted in any 60 s (exits are never refused but count); used: those "
    "of the last 60 s (the window is not saved: it starts empty at each start).",
    "price_band_pct": "Farthest a limit price may be from the mark, in % (buys above, sells below; exits too).",
}


def iso(ts_ns: int | None) -> str | None:
    if ts_ns is None or ts_ns <= 0:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _plain(value: object) -> str:
    return (
        format(value, "f")
        if isinstance(value, Decimal)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _eta_s(remaining: int, done_this_run: int, elapsed_ns: int) -> int | None:
    """Wall seconds for ``remaining`` events at this run's pace so far (None before its first event or when none
    remain)."""
    if remaining <= 0 or done_this_run <= 0 or elapsed_ns <= 0:
        return None
    return round(remaining * elapsed_ns / done_this_run / 1_000_000_000)


class EngineFacade:
    """Read and steer one running :class:`~engine.runtime.app.Engine`."""

    def __init__(self, engine: "Engine") -> None:
        self._engine = engine

    # -- identity ---------------------------------------------------------------------------------------------
    @property
    def mode(self) -> Literal["paper", "live"]:
        return "live" if self._engine.exchange.is_live else "paper"

    @property
    def venue(self) -> str:
        return self._engine.exchange.name

    def pair_names(self) -> list[str]:
        return sorted(self._engine.instruments)

    def strategy_names(self) -> list[str]:
        return [slot.name for slot in self._engine.slots]

    def subscribe_changes(self, callback: ChangeCallback) -> Callable[[], None]:
        return self._engine.journal.subscribe(callback)

    @property
    def control_path(self) -> Path | None:
        """The engine's control socket (see :mod:`engine.runtime.control`), None when it has none."""
        control = self._engine.control
        return None if control is None else control.path

    def announce_endpoint(self, url: str) -> None:
        """Record the MCP endpoint serving this engine in its state lock (``status`` and a second ``serve`` see it)."""
        self._engine.announce_endpoint(url)

    # -- reads ------------------------------------------------------------------------------------------------
    def _state(self) -> Literal["active", "paused", "halted", "reducing"]:
        return self._engine.risk.state.value

    async def status(self) -> StatusView:
        e = self._engine
        total = e.source.total
        now = e.clock.now_ns()
        from engine.runtime.clock import WallClock

        uptime_ns = WallClock().now_ns() - e.state.started_wall_ns
        return StatusView(
            mode=self.mode,
            venue=self.venue,
            trading_state=self._state(),
            halt_reason=e.risk.halt_reason,
            halted_by=None if e.risk.state is TradingState.ACTIVE else e.risk.halted_by,
            data_source=e.source.description,
            market_time=iso(now),
            uptime_s=uptime_ns // 1_000_000_000,
            progress=(Decimal(e.state.cursor) / total).quantize(PROGRESS_STEP, ROUND_DOWN) if total else None,
            events_processed=e.state.cursor,
            events_total=total,
            eta_s=_eta_s(total - e.state.cursor, e.state.events_this_run, uptime_ns) if total else None,
            strategies_running=[s.name for s in e.slots if s.enabled],
            quote_currency=e.config.quote_currency,
            equity=e.portfolio.equity(),
            open_positions=len(e.portfolio.open_positions()),
            open_orders=len(e.oms.open_ids),
            trades=e.portfolio.fill_count,
            unvalued=e.portfolio.unvalued(),
        )

    async def balance(self) -> BalanceView:
        p = self._engine.portfolio
        assets = [
            AssetBalanceView(
                asset=a,
                total=b.total,
                held=self._held(a),
                available=b.total - self._held(a),
                value=p.asset_value(a, b.total),
            )
            for a, b in sorted(p.balances.assets().items())
        ]
        return BalanceView(
            mode=self.mode,
            quote_currency=p.quote_currency,
            equity=p.equity(),
            cash=p.cash(),
            assets=assets,
            unvalued=p.unvalued(),
            reserve=self._reserve(),
        )

    def _reserve(self) -> Decimal:
        return self._engine.trader.reserve_now()

    def _held(self, asset: str) -> Decimal:
        e = self._engine
        held = Decimal(0)
        for cid in e.oms.open_ids:
            order = e.oms.orders[cid]
            inst = e.instruments[order.pair]
            if order.side is OrderSide.BUY and inst.quote == asset:
                price = order.limit_price or e.portfolio.marks.get(order.pair, Decimal(0))
                held += order.remaining * price
            elif order.side is OrderSide.SELL and inst.base == asset:
                held += order.remaining
        return held

    def _position_views(self) -> list[PositionView]:
        p = self._engine.portfolio
        views = []
        for (strategy, pair), pos in sorted(p.positions.items()):
            if pos.qty == 0:
                continue
            mark = p.marks.get(pair)
            views.append(
                PositionView(
                    strategy=strategy,
                    pair=pair,
                    qty=pos.qty,
                    avg_entry=pos.avg_entry,
                    mark=mark,
                    unrealized_pnl=pos.unrealized_pnl(mark) if mark is not None else Decimal(0),
                    realized_pnl=pos.realized_pnl,
                    fees=pos.fees,
                )
            )
        return views

    async def positions(self) -> PositionsView:
        return PositionsView(mode=self.mode, positions=self._position_views())

    async def orders(self, open_only: bool = True, limit: int = 100) -> OrdersView:
        if limit <= 0 or limit > 10000:
            raise InvalidRequest("limit must be between 1 and 10000")
        oms = self._engine.oms
        if open_only:
            chosen = [oms.orders[cid] for cid in sorted(oms.open_ids)]
        else:
            chosen = sorted(oms.orders.values(), key=lambda o: (o.created_ts_ns, o.client_id))[-limit:]
        return OrdersView(mode=self.mode, orders=[_order_view(o) for o in chosen[:limit]])

    async def trades(self, limit: int = 50) -> TradesView:
        if limit <= 0 or limit > 10000:
            raise InvalidRequest("limit must be between 1 and 10000")
        e = self._engine
        recent = e.journal.recent_fills
        if limit <= len(recent) or len(recent) == e.portfolio.fill_count:
            fills = list(recent)[-limit:]  # in memory: at once, as the books in memory stand
        else:
            fills = await e.read(lambda s: s.recent_fills(limit))
        return TradesView(
            mode=self.mode,
            trades=[
                FillView(
                    trade_id=f.trade_id,
                    client_id=f.client_id,
                    strategy=f.strategy,
                    pair=f.pair,
                    side=f.side.value,
                    qty=f.qty,
                    price=f.price,
                    fee=f.fee,
                    fee_asset=f.fee_asset,
                    liquidity=f.liquidity,
                    time=iso(f.ts_ns) or "",
                )
                for f in reversed(fills)
            ],
        )

    async def performance(self, strategy: str | None = None, pair: str | None = None) -> PerformanceView:
        e = self._engine
        trips = e.portfolio.round_trips
        curve = e.equity_curve.points()
        span = (curve[0].ts_ns, curve[-1].ts_ns) if len(curve) >= 2 else None
        if strategy is not None and pair is not None:
            raise InvalidRequest("give a strategy or a pair, not both")
        if strategy is not None:
            self._slot(strategy)
            report = compute_group_reports(trips, "strategy", span_ns=span).get(strategy)
            scope = f"strategy:{strategy}"
            if report is None:
                report = compute_trade_report([], span_ns=span)
        elif pair is not None:
            pair = self._instrument(pair)
            report = compute_group_reports(trips, "pair", span_ns=span).get(pair) or compute_trade_report(
                [], span_ns=span
            )
            scope = f"pair:{pair}"
        else:
            report = (
                compute_report(curve, trips, e.portfolio.fees_paid, starting_equity=self._opening_equity())
                if curve
                else compute_trade_report(trips)
            )
            scope = "portfolio"
        # Every money figure is in the account currency (each fill valued when booked); what could not be valued
        # then is listed in its own asset, beside the metrics, never added to them.
        p = e.portfolio
        metrics = report.to_dict()
        metrics["unrealized_pnl"] = format(p.unrealized_pnl(), "f")
        metrics["fees_paid_total"] = format(p.fees_paid, "f")
        account = scope == "portfolio"
        unvalued = UnvaluedRealizedView(
            trades=report.unvalued_trades,
            trade_pnl=dict(report.unvalued_pnl),
            trade_fees=dict(report.unvalued_fees),
            realized_pnl=dict(sorted(p.realized_unconverted.items())) if account else {},
            fees=dict(sorted(p.fees_unconverted.items())) if account else {},
        )
        return PerformanceView(
            mode=self.mode,
            scope=scope,
            return_interval=report.return_interval or "n/a",
            metrics=metrics,
            quote_currency=p.quote_currency,
            unvalued=unvalued,
        )

    def _opening_equity(self) -> Decimal | None:
        e = self._engine
        opening = e.state.opening_balances
        total = Decimal(0)
        first_mark = e.equity_curve[0] if e.equity_curve else None
        for asset, amount in opening.items():
            if asset == e.config.quote_currency:
                total += amount
            elif amount:
                return first_mark.equity if first_mark else None
        return total

    def _slot(self, name: str) -> "StrategySlot":
        slot = self._engine.trader.slot(name)
        if slot is None:
            raise NotFound(f"unknown strategy {name!r}; known: {', '.join(self.strategy_names())}")
        return slot

    def _instrument(self, pair: str) -> str:
        """The canonical name of a pair this engine trades, from any spelling of it (``xbtusd`` → ``BTC/USD``)."""
        instruments = self._engine.instruments
        if pair in instruments:
            return pair
        name = canonical_pair_name(pair) if pair.strip() else pair
        if name not in instruments:
            raise NotFound(f"unknown pair {pair!r}; known: {', '.join(self.pair_names())}")
        return name

    def _strategy_view(self, slot: "StrategySlot") -> StrategyView:
        strategy = slot.strategy
        bounds = self._engine.config.tuning.bounds.get(slot.name, {})
        params = []
        for p in strategy.params:
            lo, hi = p.minimum, p.maximum
            if p.name in bounds:
                b = bounds[p.name]
                lo = b.minimum if b.minimum is not None and (lo is None or b.minimum > lo) else lo
                hi = b.maximum if b.maximum is not None and (hi is None or b.maximum < hi) else hi
            params.append(
                ParamView(
                    name=p.name,
                    type=p.kind,
                    value=_plain(strategy.values[p.name]),
                    default=_plain(p.default),
                    minimum=None if lo is None else _plain(lo),
                    maximum=None if hi is None else _plain(hi),
                    description=p.description,
                )
            )
        return StrategyView(
            name=slot.name,
            kind=strategy.kind,
            description=strategy.description,
            pair=slot.pair,
            enabled=slot.enabled,
            weight=slot.weight,
            version=slot.version,
            params=params,
            group=slot.group or None,
            votes=slot.votes,
            pairs=list(slot.pairs),
            **self._weight_fields(slot.name),
        )

    def _weight_fields(self, name: str) -> dict[str, object]:
        learning = self._engine.learning
        if learning is None:
            return {}
        when, why = learning.last_change.get(name, (None, ""))
        return {
            "weight_bounds": list(learning.settings.bounds(name)),
            "weight_changed_at": iso(when),
            "weight_reason": why,
        }

    def _learning_view(self) -> LearningView | None:
        learning = self._engine.learning
        if learning is None:
            return None
        s = learning.settings
        return LearningView(
            enabled=True,
            rule=RULE,
            every=s.every,
            lookback=s.lookback if isinstance(s.lookback, str) else f"last {s.lookback} round trips",
            score=s.score,
            eta=s.eta,
            min_trades=s.min_trades,
            keep_total=s.keep_total,
            next_update=iso(learning.next_ns) if learning.next_ns else None,
            updates=learning.ticks,
        )

    async def strategies(self) -> StrategiesView:
        return StrategiesView(
            strategies=[self._strategy_view(s) for s in self._engine.slots], learning=self._learning_view()
        )

    async def strategy(self, name: str) -> StrategyView:
        return self._strategy_view(self._slot(name))

    async def risk(self) -> RiskView:
        e = self._engine
        limits, caps = e.risk.limits, e.risk.caps
        used: dict[str, Decimal | None] = {
            "max_order_qty": None,
            "max_order_notional": None,
            "max_pair_notional": max((e.portfolio.pair_notional(pair) for pair in e.instruments), default=Decimal(0)),
            "max_total_notional": e.portfolio.total_notional(),
            "max_open_orders": Decimal(len(e.oms.open_ids)),
            "max_orders_per_minute": Decimal(e.risk.orders_in_window(e.clock.now_ns())),
            "price_band_pct": None,
        }
        return RiskView(
            mode=self.mode,
            trading_state=self._state(),
            limits=[
                RiskLimitView(
                    name=name,
                    value=Decimal(getattr(limits, name)),
                    cap=Decimal(getattr(caps, name)),
                    used=used[name],
                    description=_LIMIT_TEXT[name],
                )
                for name in RiskLimits.model_fields
            ],
            rules=rule_views(e),
            breakers=breaker_views(e),
            guards=guard_views(e),
            halt_reason=e.risk.halt_reason if e.risk.state is not TradingState.ACTIVE else "",
        )

    async def market(self, pair: str) -> MarketView:
        pair = self._instrument(pair)
        e = self._engine
        event = e.trader.last_event.get(pair)
        last = e.portfolio.marks.get(pair)
        bid = ask = bid_qty = ask_qty = None
        if isinstance(event, Ticker):
            bid, ask, bid_qty, ask_qty, last = event.bid, event.ask, event.bid_qty, event.ask_qty, event.last
        elif isinstance(event, BookSnapshot):
            if event.bids:
                bid, bid_qty = event.bids[0].price, event.bids[0].qty
            if event.asks:
                ask, ask_qty = event.asks[0].price, event.asks[0].qty
        elif isinstance(event, Candle):
            last = event.close
        elif isinstance(event, TradeTick):
            last = event.price
        ts = None if event is None else (event.close_ns if isinstance(event, Candle) else event.ts_ns)
        return MarketView(pair=pair, time=iso(ts), last=last, bid=bid, ask=ask, bid_qty=bid_qty, ask_qty=ask_qty)

    async def markets(self, quote: str = "USD", top: int = 20, size: float | str = 1000.0) -> MarketsView:
        """Pairs ranked by the opportunity scanner: Kraken's on a Kraken feed, else the pairs replayed so far (see
        :mod:`engine.runtime.markets_view`); a repeated scan within seconds gets the kept answer."""
        return await engine_scan(self._engine, quote, top, size)

    async def events(self, limit: int = 50, kind: str | None = None) -> list[EventView]:
        if limit <= 0 or limit > 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        records = await self._engine.read(lambda s: s.tail_events(limit, kind))
        return [
            EventView(
                id=r.id,
                time=iso(r.wall_ts_ns if r.wall_ts_ns is not None else r.ts_ns) or "",
                market_time=iso(r.ts_ns) or "",
                kind=r.kind,
                source=r.source,
                payload=dict(r.payload),
            )
            for r in records
        ]

    async def diagnose(self, progress: ProgressCallback | None = None) -> DiagnosisView:
        checks = await diagnostics.run_checks(self._engine, progress)
        worst: Literal["ok", "warn", "fail"] = (
            "fail"
            if any(c.status == "fail" for c in checks)
            else "warn"
            if any(c.status == "warn" for c in checks)
            else "ok"
        )
        return DiagnosisView(mode=self.mode, overall=worst, checks=checks)

    async def backtest(
        self,
        kind: str,
        params: Mapping[str, object],
        pair: str,
        data: str,
        start: str | None = None,
        end: str | None = None,
        *,
        timeout_s: float | None = None,
    ) -> BacktestView:
        """Backtest one strategy ``kind`` with ``params`` on ``data`` (``"sample"`` or a file name inside the data
        folder), optionally over the window ``start`` to ``end`` (ISO dates), on a simulated account built from
        this engine's configuration; run in a worker process within ``timeout_s`` (default 120 s), against an
        in-memory store of its own: nothing of this engine is read or changed beyond its configuration. The run
        is ``trading-mcp backtest``'s (:mod:`engine.runtime.backtest_run`).

        Raises:
            InvalidRequest: an unknown kind, a bad parameter, window or data name, or a run over its time.
            NotAllowed: another backtest is running.
        """
        from engine.runtime.backtest_run import BACKTEST_TIMEOUT_S, backtest_in_worker

        limit = BACKTEST_TIMEOUT_S if timeout_s is None else timeout_s
        return await backtest_in_worker(
            self._engine.config,
            kind=kind,
            params=params,
            pair=pair,
            data=data,
            start=start,
            end=end,
            timeout_s=limit,
        )

    async def optimize(
        self,
        kind: str,
        ranges: Sequence[str],
        pair: str,
        data: str,
        start: str | None = None,
        end: str | None = None,
        *,
        trials: int = 50,
        objective: str = "sharpe",
        walk_forward: int = 0,
        sampler: str = "tpe",
        seed: int = 1,
        save: bool = True,
        progress: ProgressCallback | None = None,
        timeout_s: float | None = None,
    ) -> OptimizeView:
        """Search strategy ``kind``'s parameters over ``ranges`` (``NAME=LOW:HIGH[:STEP]`` or ``NAME=VALUE``, as
        ``trading-mcp optimize --param``) on ``data`` (``"sample"`` or a file name inside the data folder),
        optionally over the window ``start`` to ``end``, on simulated accounts built from this engine's
        configuration; in a worker process within ``timeout_s`` (default 600 s), each finished trial reported to
        ``progress``. A finished run is saved in ``<data_dir>/optimize.db`` unless ``save`` is false; nothing of
        this engine is read or changed beyond its configuration (:mod:`engine.runtime.optimize_run`).

        Raises:
            InvalidRequest: an unknown kind, a bad range, count, window or data name, or a run over its time.
            NotAllowed: another optimisation is running.
        """
        from engine.runtime.optimize_run import OPTIMIZE_TIMEOUT_S, checked_request, optimize_in_worker

        base = self._engine.config
        request = checked_request(
            base,
            kind=kind,
            ranges=ranges,
            pair=pair,
            data=data,
            start=start,
            end=end,
            trials=trials,
            objective=objective,
            walk_forward=walk_forward,
            sampler=sampler,
            seed=seed,
        )
        limit = OPTIMIZE_TIMEOUT_S if timeout_s is None else timeout_s
        return await optimize_in_worker(base, request, data, save=save, progress=progress, timeout_s=limit)

    async def _what_if(
        self, slot: "StrategySlot", merged: Mapping[str, ParamValue]
    ) -> tuple[WhatIfView | None, str | None]:
        """The preview's what-if (current against ``merged`` on the slot's recent candles), or why there is none."""
        from engine.runtime.what_if import too_few_candles, what_if_in_worker

        strategy = slot.strategy
        if slot.pairs:
            return None, "no what-if: a strategy over several pairs is not backtested on one pair's candles"
        warmup = max(strategy.warmup, type(strategy)(merged).warmup)
        candles = list(slot.history)
        reason = too_few_candles(len(candles), warmup)
        if reason is not None:
            return None, reason
        try:
            view = await what_if_in_worker(
                self._engine.config,
                kind=strategy.kind,
                pair=slot.pair,
                candles=candles,
                current=dict(strategy.values),
                proposed=dict(merged),
                shown=(_shown(strategy.values), _shown(merged)),
                instruments=self._engine.instruments,
            )
        except FacadeError as exc:  # too long, or another what-if running: the diff still answers
            return None, f"no what-if: {exc}"
        return view, None

    # -- changes ----------------------------------------------------------------------------------------------
    async def record_event(self, kind: str, source: str, payload: Mapping[str, object]) -> None:
        self._engine.journal.event(kind, source, payload)

    def _audit(self, action: str, source: str, args: Mapping[str, object], result: object) -> None:
        self._engine.journal.event(action, source, {"args": args, "result": result, "mode": self.mode})

    async def _durable(self) -> None:
        """Wait until everything this change wrote is committed (and, for a resumable run, synced to disk): an
        answer is never sent for a change a crash could still lose.

        Raises:
            Exception: the write failed (the caller's change is then reported as an error, not acknowledged).
        """
        await self._engine.writer.flush()

    async def tune_strategy(
        self, name: str, params: Mapping[str, object], *, preview: bool, source: str
    ) -> TuneResultView:
        e = self._engine
        slot = self._slot(name)
        if not e.config.tuning.allowed:
            raise NotAllowed("run-time tuning is disabled by the operator (tuning.allowed = false)")
        if not isinstance(params, Mapping) or not params:
            raise InvalidRequest("params must name at least one parameter")
        try:
            merged = slot.strategy.validate(params, base=slot.strategy.values)
            slot.check_timeframes(merged)
            if isinstance(slot.strategy, PortfolioStrategy):
                slot.strategy.check_pairs(merged, slot.pairs)  # a weight for a pair it does not trade
        except ParamError as exc:
            raise InvalidRequest(str(exc)) from None
        bounds = e.config.tuning.bounds.get(name, {})
        for pname in params:
            b = bounds.get(pname)
            value = merged[pname]
            if b is not None and not isinstance(value, bool):
                if b.minimum is not None and value < b.minimum:
                    raise InvalidRequest(f"{pname}: {value} is below the operator's minimum {b.minimum}")
                if b.maximum is not None and value > b.maximum:
                    raise InvalidRequest(f"{pname}: {value} is above the operator's maximum {b.maximum}")
        changes = [
            ParamChange(name=k, before=_plain(slot.strategy.values[k]), after=_plain(merged[k]))
            for k in params
            if merged[k] != slot.strategy.values[k]
        ]
        if preview or not changes:
            what_if, note = None, None
            if preview:
                what_if, note = await self._what_if(slot, merged)
            result = TuneResultView(
                mode=self.mode,
                strategy=name,
                applied=False,
                version=slot.version,
                changes=changes,
                what_if=what_if,
                what_if_note=note,
            )
            # Previews are audited too: what a client looked at before it changed something is part of the story.
            self._audit(
                "tune_strategy_preview" if preview else "tune_strategy",
                source,
                {"strategy": name, "params": jsonable(params)},
                result.model_dump(mode="json"),
            )
            return result
        slot.retune(merged)
        slot.version += 1
        e._save_params(slot, source, "tune_strategy")
        result = TuneResultView(mode=self.mode, strategy=name, applied=True, version=slot.version, changes=changes)
        self._audit(
            "tune_strategy",
            source,
            {"strategy": name, "params": jsonable(params)},
            result.model_dump(mode="json"),
        )
        e.journal.mark_dirty("strategies")
        await self._durable()
        return result

    async def set_strategy_enabled(self, name: str, enabled: bool, *, source: str) -> StrategyView:
        if not isinstance(enabled, bool):
            raise InvalidRequest("enabled must be true or false")
        slot = self._slot(name)
        e = self._engine
        if enabled and slot.breaker:
            # Enabling a strategy a breaker stopped re-arms its breakers (the run of losses and errors start anew).
            slot.breaker = ""
            if e.trader.breakers is not None:
                e.trader.breakers.reset(name)
                resets = dict(e.breaker_resets)
                resets[name] = len(e.portfolio.round_trips)
                e.breaker_resets = resets
                e.journal.set_kv(BREAKER_RESETS_KV, resets)
        if slot.enabled != enabled:
            slot.enabled = enabled
            slot.version += 1
            e._save_params(slot, source, "enabled" if enabled else "disabled")
        view = self._strategy_view(slot)
        self._audit(
            "enable_strategy" if enabled else "disable_strategy",
            source,
            {"strategy": name},
            {"enabled": enabled},
        )
        e.journal.mark_dirty("strategies", "status")
        await self._durable()
        return view

    def _set_state(self, state: TradingState, reason: str, by: Authority) -> None:
        e = self._engine
        e.risk.state = state
        e.risk.halt_reason = reason
        e.risk.halted_by = by
        values = {"trading_state": state.value, "halt_reason": reason, "halted_by": by}

        def write(store: Store) -> None:
            for key, value in values.items():
                store.set_kv(key, value)

        e.writer.submit(write)  # one unit of work: the state, its reason and who set it
        e.journal.mark_dirty("status")

    async def pause(self, *, source: str, reason: str = "", by: Authority = "client") -> TradingStateView:
        e = self._engine
        if e.risk.state is TradingState.HALTED:
            raise NotAllowed("the engine is halted by an emergency stop; resume it first")
        reason = e.journal.redactor.foreign(reason)
        self._set_state(TradingState.PAUSED, reason or f"paused by {source}", by)
        view = TradingStateView(mode=self.mode, trading_state=self._state(), halt_reason=e.risk.halt_reason)
        self._audit("pause_trading", source, {"reason": reason}, view.model_dump(mode="json"))
        await self._durable()
        return view

    async def resume(self, *, source: str, by: Authority = "client") -> TradingStateView:
        """Lift a pause or a halt. The operator's halt (``trading-mcp halt``) is lifted only by the operator
        (``trading-mcp resume``), unless ``[risk] mcp_may_resume_operator_halt`` allows the MCP client to.

        Raises:
            NotAllowed: trading is active, or the halt is the operator's and ``by`` is not.
        """
        e = self._engine
        if e.risk.state is TradingState.ACTIVE:
            raise NotAllowed("trading is already active")
        operator_stop = e.risk.halted_by == "operator" and e.risk.state is TradingState.HALTED
        if operator_stop and by != "operator" and not e.config.risk.mcp_may_resume_operator_halt:
            raise NotAllowed(
                "trading was halted by the operator (trading-mcp halt); only `trading-mcp resume` from the "
                "operator's shell lifts that halt"
            )
        before = e.risk.state.value
        self._set_state(TradingState.ACTIVE, "", by)
        after_operator_resume(e)  # a rule's halt lifted: the account rules start afresh from the equity now
        view = TradingStateView(mode=self.mode, trading_state=self._state(), halt_reason="")
        self._audit(
            "resume_trading",
            source,
            {"from": before, "halted_by": "operator" if operator_stop else "client"},
            view.model_dump(mode="json"),
        )
        await self._durable()
        return view

    async def set_risk_limits(self, changes: Mapping[str, object], *, source: str) -> RiskView:
        """Tighten (or, within the operator's caps, loosen) the limits and the account rules ([risk.rules]: a
        rule's name among ``changes`` goes to :meth:`set_account_rules`).

        Raises:
            InvalidRequest: an unknown name or a bad value.
            LimitExceeded: a value beyond the operator's cap.
        """
        rule_names = {*AccountRules.model_fields}
        rule_changes = {k: v for k, v in changes.items() if k in rule_names}
        if rule_changes:
            rest = {k: v for k, v in changes.items() if k not in rule_names}
            if rest:
                self._engine.risk.propose_limits(rest)  # both halves are checked before either applies
                propose_rules(self._engine.account_guard.rules, self._engine.config.risk.rule_caps, rule_changes)
            view = await self.set_account_rules(rule_changes, source=source)
            return view if not rest else await self.set_risk_limits(rest, source=source)
        e = self._engine
        before = e.risk.limits.model_dump(mode="json")
        proposed = e.risk.propose_limits(changes)
        e.risk.limits = proposed
        e.journal.set_kv("risk_limits", proposed.model_dump(mode="json"))
        return await self._risk_changed("set_risk_limits", source, changes, before, proposed.model_dump(mode="json"))

    async def set_account_rules(self, changes: Mapping[str, object], *, source: str) -> RiskView:
        """Change the account rules ([risk.rules]); never looser than the operator's ``[risk.rule_caps]``.

        Raises:
            InvalidRequest: an unknown rule or a bad value.
            LimitExceeded: a value looser than the operator's cap.
        """
        e = self._engine
        guard = e.account_guard
        before = guard.rules.model_dump(mode="json")
        proposed = propose_rules(guard.rules, e.config.risk.rule_caps, dict(changes))
        guard.set_rules(proposed)
        e.journal.set_kv(RULES_KV, proposed.model_dump(mode="json"))
        return await self._risk_changed("set_risk_rules", source, changes, before, proposed.model_dump(mode="json"))

    async def _risk_changed(
        self, kind: str, source: str, changes: Mapping[str, object], before: object, after: object
    ) -> RiskView:
        """Audit a change of limits or rules, mark the risk view changed, and answer once it is durable."""
        view = await self.risk()
        self._audit(kind, source, {"changes": jsonable(changes)}, {"before": before, "after": after})
        self._engine.journal.mark_dirty("risk")
        await self._durable()
        return view

    async def emergency_stop(
        self, *, flatten: bool, source: str, reason: str = "", by: Authority = "client"
    ) -> EmergencyStopView:
        """Cancel every open order, optionally flatten, and latch the engine halted. Idempotent.

        ``by``: who stops. A stop by the operator, or on top of one, stays the operator's to lift.
        """
        e = self._engine
        already = e.risk.state is TradingState.HALTED
        keeper: Authority = "operator" if by == "operator" or (already and e.risk.halted_by == "operator") else by
        reason = e.journal.redactor.foreign(reason)
        self._set_state(TradingState.HALTED, reason or f"emergency stop by {source}", keeper)
        # The latch is made durable first: a crash from here on restarts halted.
        await self._durable()
        canceled = await e.exchange.cancel_all()
        faults.hit("venue")
        flatten_ids: list[str] = []
        if flatten:
            for position in e.portfolio.open_positions():
                if position.qty <= 0:
                    continue
                request = OrderRequest(
                    client_id=e.oms.next_client_id(),
                    pair=position.pair,
                    side=OrderSide.SELL,
                    order_type=OrderType.MARKET,
                    qty=position.qty,
                    limit_price=None,
                    ts_ns=e.clock.now_ns(),
                    strategy=position.strategy,
                )
                order = await e.oms.submit(request, force=True)
                flatten_ids.append(order.client_id)
        view = EmergencyStopView(
            mode=self.mode,
            already_halted=already,
            canceled_orders=canceled,
            flatten_orders=flatten_ids,
            trading_state=self._state(),
            open_orders_after=len(e.oms.open_ids),
            positions_after=self._position_views(),
        )
        self._audit("emergency_stop", source, {"flatten": flatten, "reason": reason}, view.model_dump(mode="json"))
        await self._durable()
        return view

    async def submit_order(
        self,
        pair: str,
        side: Literal["buy", "sell"],
        qty: Decimal,
        limit_price: Decimal | None,
        *,
        source: str,
    ) -> OrderView:
        """Place a manual order through risk checks (engine API for operators, tests and benchmarks)."""
        e = self._engine
        pair = self._instrument(pair)
        inst = e.instruments[pair]
        request = OrderRequest(
            client_id=e.oms.next_client_id(),
            pair=pair,
            side=OrderSide(side),
            order_type=OrderType.LIMIT if limit_price is not None else OrderType.MARKET,
            qty=qty,
            limit_price=limit_price,
            ts_ns=e.clock.now_ns(),
            strategy="manual",
        )
        mark = e.portfolio.marks.get(pair)
        ref = limit_price if limit_price is not None else mark
        if ref is None:
            raise NotAllowed(f"no price known yet for {pair}")
        if not e.risk.may_trade:  # reducing may trade: the risk checks below refuse its buys by rule
            raise NotAllowed(f"trading is {e.risk.state.value}")
        check = inst.check_order(qty, limit_price if limit_price is not None else None)
        if check is not None:
            e.journal.order_refused("manual", pair, side, qty, check, check)
            raise InvalidRequest(check)
        # The same limits as the strategies' orders (sizes, notionals in the account currency, open orders,
        # balance, orders per minute); a manual position is its own "manual" strategy, so a manual sell sells what
        # was bought by hand. A limit price is held to price_band_pct of the pair's mark; with no mark yet the band
        # cannot be measured, so a limit order is refused unless the band is off (unbounded).
        # A refusal is recorded as the strategies' are (an order_refused event), then answered.
        refusal = e.risk.refuse_unmarked(request) if mark is None else None
        if refusal is None:
            refusal = e.risk.assess(request, inst, ref, e.trader.exposure_for("manual", pair, inst), mark=mark)
        if refusal is not None:
            e.journal.order_refused("manual", pair, side, qty, refusal.rule, refusal.reason)
            raise LimitExceeded(f"refused by risk: {refusal.reason}")
        order = await e.oms.submit(request)
        self._audit(
            "submit_order",
            source,
            {"pair": pair, "side": side, "qty": qty, "limit_price": limit_price},
            order.client_id,
        )
        await self._durable()
        return _order_view(order)

    # -- one order, one position ------------------------------------------------------------------------------
    async def cancel_order(self, client_id: str, *, source: str, by: Authority = "client") -> OrderView:
        """Cancel one open order (any trading state: a cancel only takes risk away), audited and durable.

        Raises:
            NotFound: no order has that id.
            NotAllowed: the order is not open, or the venue refused or could not be reached (nothing changed).
        """
        e = self._engine
        cid = ClientOrderId(client_id.strip()) if isinstance(client_id, str) else None
        order = e.oms.orders.get(cid) if cid else None
        if cid is None or order is None:
            opened = ", ".join(sorted(e.oms.open_ids)[:10]) or "none"
            raise NotFound(f"no order {client_id!r} is known; open orders: {opened}")
        if not order.is_open:
            raise NotAllowed(f"order {cid} is {order.status.value}, not open: there is nothing to cancel")
        try:
            await e.exchange.cancel_order(cid)
        except (OrderRefused, ExchangeUnavailable) as exc:
            reason = e.journal.redactor.foreign(str(exc))
            raise NotAllowed(f"the venue did not cancel order {cid} ({reason}); it is unchanged") from None
        view = _order_view(order)
        self._audit("cancel_order", source, {"client_id": cid, "by": by}, view.model_dump(mode="json"))
        e.journal.mark_dirty("orders", "status")
        await self._durable()
        return view

    async def close_position(
        self, pair: str, strategy: str | None = None, *, source: str, by: Authority = "client"
    ) -> OrdersView:
        """Close a position with a market sell of exactly its quantity, through the order manager; with no
        ``strategy``, every strategy's position in ``pair``. The strategy's open orders in that pair are
        cancelled first (a resting buy would reopen it, a resting sell would hold what is sold). An exit is
        never refused by size, notional or tick rules; the operator may close in any trading state, the client
        not while the operator's halt stands.

        Raises:
            NotFound: an unknown pair or strategy.
            NotAllowed: nothing to close, or the operator's halt and ``by`` is not the operator.
            LimitExceeded: Kraken itself would refuse the sell (a quantity below its minimum).
        """
        e = self._engine
        pair = self._instrument(pair)
        if strategy is not None and strategy != "manual":
            self._slot(strategy)
        positions = [
            p for p in e.portfolio.open_positions() if p.pair == pair and (strategy is None or p.strategy == strategy)
        ]
        long = [p for p in positions if p.qty > 0]
        whose = f"strategy {strategy!r}" if strategy is not None else "any strategy"
        if not long:
            raise NotAllowed(f"no open position in {pair} for {whose}: there is nothing to close")
        state = e.risk.state
        if state is TradingState.HALTED and e.risk.halted_by == "operator" and by != "operator":
            raise NotAllowed(
                "trading was halted by the operator; only the operator's shell (trading-mcp close) may close "
                "a position now"
            )
        inst = e.instruments[pair]
        ref = e.portfolio.marks.get(pair)
        for position in long:
            check = inst.check_order(position.qty, None)
            if check is not None:
                e.journal.order_refused(position.strategy, pair, "sell", position.qty, check, check)
                raise LimitExceeded(f"Kraken would refuse selling {position.qty} {inst.base}: {check}")
        owners = {p.strategy for p in long}
        canceled: list[str] = []
        for cid in sorted(e.oms.open_ids):
            order = e.oms.orders[cid]
            if order.pair == pair and order.strategy in owners:
                try:
                    await e.exchange.cancel_order(cid)
                except (OrderRefused, ExchangeUnavailable):
                    continue  # it is closing or unreachable: the sell below is still the exit
                canceled.append(cid)
        sent: list[Order] = []
        for position in long:
            request = OrderRequest(
                client_id=e.oms.next_client_id(),
                pair=pair,
                side=OrderSide.SELL,
                order_type=OrderType.MARKET,
                qty=position.qty,
                limit_price=None,
                ts_ns=e.clock.now_ns(),
                strategy=position.strategy,
            )
            if state is TradingState.ACTIVE and ref is not None:
                # The risk engine's own word on an exit (it lets them through; only lacking the asset refuses).
                refusal = e.risk.assess(request, inst, ref, e.trader.exposure_for(position.strategy, pair, inst))
                if refusal is not None:
                    e.journal.order_refused(position.strategy, pair, "sell", position.qty, refusal.rule, refusal.reason)
                    raise LimitExceeded(f"refused by risk: {refusal.reason}")
            sent.append(await e.oms.submit(request, force=state is not TradingState.ACTIVE))
        view = OrdersView(mode=self.mode, orders=[_order_view(o) for o in sent])
        self._audit(
            "close_position",
            source,
            {"pair": pair, "strategy": strategy, "by": by},
            {"orders": [o.client_id for o in sent], "canceled": canceled, "qty": [p.qty for p in long]},
        )
        e.journal.mark_dirty("orders", "positions", "status")
        await self._durable()
        return view


def _shown(values: Mapping[str, ParamValue]) -> dict[str, str]:
    return {k: _plain(v) for k, v in values.items()}


def _order_view(order: Order) -> OrderView:
    return OrderView(
        client_id=order.client_id,
        venue_order_id=order.venue_order_id,
        strategy=order.strategy,
        pair=order.pair,
        side=order.side.value,
        order_type=order.order_type.value,
        qty=order.qty,
        filled_qty=order.filled_qty,
        limit_price=order.limit_price,
        avg_price=order.avg_price,
        status=order.status.value,
        reason=order.reason,
        created=iso(order.created_ts_ns) or "",
    )
