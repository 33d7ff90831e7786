"""One backtest: one strategy over a data file, replayed as fast as the machine goes into its own in-memory store.

``trading-mcp backtest`` (:mod:`engine.runtime.cli_backtest`) and the facade's ``backtest`` (the MCP tool
``backtest``) both run it here, so the two give the same figures for the same arguments:

* :func:`backtest_config` builds the configuration from a base one (the ``--config`` file, or the running engine's
  own): that one strategy on that file, replayed at full speed, under no risk limits unless ``risk_limits`` is
  ``"config"`` (see :mod:`engine.runtime.cli_backtest` for why); the paper account, fees, ``[risk.rules]`` and
  breakers of the base apply.
* :func:`prepare_backtest` builds the engine over the file, or over the candles of a window of it (those that open
  at or after ``start`` and close at or before ``end``); :func:`run_prepared` runs it and collects what it did.

The facade's path (:func:`backtest_in_worker`) checks every argument first (the strategy kind against the registry,
its parameters against their declared schema, a window of ISO dates, and a data file named ``sample`` or inside the
engine's ``data_dir``: never a path from outside it, see :func:`resolve_data_name`), then runs the backtest in a
worker process (``anyio.to_process``), off the live engine's event loop and interpreter, against a private
in-memory store, never the live state file. The run is bounded in time (the worker is killed when it is over) and
one runs at a time per process. It answers with a compact :class:`~engine.runtime.views.BacktestView`, not every
fill.

Errors: :class:`BacktestError` (a mistake in the command line, shown as is); the facade's path raises
:class:`~engine.errors.InvalidRequest` (bad arguments, a file that is not a replayable data file, a run over its
time) or :class:`~engine.errors.NotAllowed` (another backtest is running).
"""

import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import anyio

from engine.domain.instrument import Instrument
from engine.domain.market_data import Candle
from engine.domain.orders import Fill, Order, OrderStatus
from engine.errors import InvalidRequest
from engine.exchanges.replay import ReplaySource
from engine.exchanges.replay.errors import ReplayError
from engine.market.catalog_files import canonical_pair_name
from engine.persistence import Store
from engine.persistence.records import EventRecord
from engine.risk.limits import RiskLimits
from engine.runtime.app import Engine, EngineError, RunOptions, replay_file
from engine.runtime.config import Config, ConfigError, config_from_mapping
from engine.runtime.journal import ORDER_REFUSED
from engine.runtime.sources import ReplayMarketSource, shipped_sample
from engine.runtime.views import BacktestView, BacktestWindowView, PerformanceView
from engine.runtime.worker_process import run_in_worker
from engine.strategies import ParamError, strategy_class

__all__ = [
    "BACKTEST_TIMEOUT_S",
    "BACKTEST_YIELD_S",
    "DATA_SUFFIXES",
    "RISK_LIMIT_CHOICES",
    "SAMPLE_NAME",
    "BacktestError",
    "BacktestOutcome",
    "BacktestSpec",
    "PreparedBacktest",
    "backtest_config",
    "backtest_in_worker",
    "backtest_summary",
    "candles_backtest",
    "checked_data",
    "parse_when",
    "prepare_backtest",
    "refuse_book_strategy",
    "resolve_data_name",
    "run_backtest",
    "run_prepared",
    "summarize",
    "window_candles",
]

# A backtest serves nobody while it runs: yield to the event loop rarely (each yield can cost a GIL hand-off).
BACKTEST_YIELD_S = 0.25
RISK_LIMIT_CHOICES = ("none", "config")
BACKTEST_TIMEOUT_S = 120.0
"""How long the facade's backtest may run before its worker process is killed."""
SAMPLE_NAME = "sample"
"""The data name of the shipped Kraken one-minute capture."""
DATA_SUFFIXES = (".csv", ".json")
"""What a data file may be called: Kraken OHLCVT CSV, or REST OHLC or Trades JSON (never the state, a token...)."""
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_DATA_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_MAX_NAME = 200
_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BacktestError(Exception):
    """A mistake in the backtest's command line; the message is shown as is."""


@dataclass(frozen=True, slots=True)
class BacktestSpec:
    """What to backtest.

    Attributes:
        data: the data file (already resolved: the CLI's ``--data``, or :func:`resolve_data_name`'s answer).
        strategy: the strategy kind (it is also the strategy's name in the run).
        params: parameter name -> value (text as the CLI reads it, or numbers); the rest keep their defaults.
        pair: the pair the data is traded as, in any spelling.
        interval_minutes: the candle interval of the file (inferred when None).
        risk_limits: ``"none"`` (sizes and exposure unbounded) or ``"config"`` (the base's ``[risk]`` limits).
        start_ns, end_ns: the window: candles opening at or after ``start_ns`` and closing at or before ``end_ns``
            (None: from the file's start, to its end).
    """

    data: Path
    strategy: str
    params: Mapping[str, object] = field(default_factory=dict)
    pair: str = "BTC/USD"
    interval_minutes: int | None = None
    risk_limits: Literal["none", "config"] = "none"
    start_ns: int | None = None
    end_ns: int | None = None


@dataclass(frozen=True, slots=True)
class BacktestOutcome:
    """What a finished backtest did (the engine is stopped; read it, do not run it again)."""

    engine: Engine
    performance: PerformanceView
    refusal_events: list[EventRecord]
    fills: list[Fill]
    rejected: list[Order]
    window: BacktestWindowView


def backtest_config(base: Config, spec: BacktestSpec) -> Config:
    """The configuration of one backtest: ``base`` with one strategy on the file, replayed at full speed, under no
    risk limits unless ``spec.risk_limits == "config"``.

    Raises:
        BacktestError: the data file does not exist.
        ConfigError: the strategy, a parameter or the pair is refused (the message names it).
    """
    if not spec.data.is_file():
        raise BacktestError(f"data file {spec.data} does not exist or is not a file")
    return _config_of(base, spec, spec.data)


def refuse_book_strategy(kind: str) -> None:
    """Refuse a strategy that trades on the L2 book (``micro_scalper``): backtests replay candle files, which carry
    no book, so it would run and never trade.

    Raises:
        BacktestError: naming the strategy and what to do instead.
    """
    try:
        uses_book = strategy_class(kind).uses_book()
    except ParamError:
        return  # an unknown kind: the configuration refuses it with the list of known ones
    if uses_book:
        raise BacktestError(
            f"{kind} trades on the L2 book, which candle data does not carry: a backtest would never trade; replay "
            "book snapshots through the engine instead (README: Book strategies)"
        )


def _config_of(base: Config, spec: BacktestSpec, file: Path | None) -> Config:
    """:func:`backtest_config` over ``file`` (None: candles handed to the engine, no file)."""
    refuse_book_strategy(spec.strategy)
    data: dict[str, Any] = base.model_dump()
    data["mode"] = "paper"  # a backtest trades on the simulated venue only, whatever the base says
    data["strategies"] = [
        {"name": spec.strategy, "kind": spec.strategy, "pair": spec.pair, "params": dict(spec.params)}
    ]
    data["market"] = {**data["market"], "source": "replay", "feeds": [], "file": file, "pair": spec.pair}
    data["market"]["speed"] = "max"
    if spec.interval_minutes:
        data["market"]["interval_minutes"] = spec.interval_minutes
    _account_in_the_pairs_quote(data, spec.pair)
    data.pop("universe", None)  # one strategy: never a scanner-chosen universe on top of it
    data.pop("learning", None)  # one strategy at its configured weight: adaptive weights move shares between several
    if spec.risk_limits == "none":
        # A backtest must not be stopped by limits tuned for live trading: none apply unless asked for.
        unbounded = RiskLimits.unbounded().model_dump()
        data["risk"] = {**data["risk"], "limits": unbounded, "caps": unbounded}
    return config_from_mapping(data)


def _account_in_the_pairs_quote(data: dict[str, Any], pair: str) -> None:
    """A backtest of a pair quoted in an asset the account neither holds nor counts in (BTC/USDT in the default USD
    account) could not size a single entry (no USDT, and no price for USDT in USD in a one-pair replay): the
    account is then kept in the pair's quote asset instead, with the same opening amount (see
    :func:`account_note`)."""
    try:
        quote = canonical_pair_name(pair).split("/")[1]
    except (ValueError, IndexError):
        return
    paper = data["paper"]
    balances = paper["starting_balances"]
    if quote == data["quote_currency"] or quote in balances:
        return
    amount = balances.get(data["quote_currency"], Decimal(10000))
    paper["starting_balances"] = {quote: amount}
    data["quote_currency"] = quote


def account_note(base: Config, config: Config) -> str | None:
    """Why a backtest's account differs from the configuration's (None when it does not)."""
    if config.quote_currency == base.quote_currency:
        return None
    amount = config.paper.starting_balances[config.quote_currency]
    return (
        f"the pair is quoted in {config.quote_currency}, which the account ({base.quote_currency}) neither holds nor "
        f"can price in a one-pair replay: the backtest's account starts with {amount} {config.quote_currency} instead"
    )


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / _NS, UTC).isoformat().replace("+00:00", "Z")


def window_candles(events: Sequence[Any], start_ns: int | None, end_ns: int | None) -> list[Candle]:
    """The candles of ``events`` that open at or after ``start_ns`` and close at or before ``end_ns`` (None: no
    bound on that side)."""
    start = start_ns if start_ns is not None else -(2**62)
    end = end_ns if end_ns is not None else 2**62
    return [e for e in events if isinstance(e, Candle) and e.ts_ns >= start and e.close_ns <= end]


def _window_view(events: Sequence[Any], last_ts_ns: int, spec: BacktestSpec) -> BacktestWindowView:
    return BacktestWindowView(
        start=_iso(events[0].ts_ns) or "",
        end=_iso(last_ts_ns) or "",
        candles=len(events),
        requested_start=_iso(spec.start_ns),
        requested_end=_iso(spec.end_ns),
    )


def _windowed(replay: ReplaySource, spec: BacktestSpec) -> tuple[ReplaySource, BacktestWindowView]:
    """The replay of the window's candles (the whole file without a window), and the window actually used."""
    if spec.start_ns is not None or spec.end_ns is not None:
        inside = replay.window(spec.start_ns, spec.end_ns)
        if inside is None:
            covered = f"{_iso(replay.events[0].ts_ns)} to {_iso(replay.last_ts_ns)}"
            raise BacktestError(
                f"no candle of {spec.data.name} lies inside the window {_iso(spec.start_ns) or 'its start'} to "
                f"{_iso(spec.end_ns) or 'its end'} (the file covers {covered})"
            )
        replay = inside
    return replay, _window_view(replay.events, replay.last_ts_ns, spec)


@dataclass(frozen=True, slots=True)
class PreparedBacktest:
    """A backtest's engine, built and not started, and the window of the data it will replay."""

    engine: Engine
    window: BacktestWindowView


def prepare_backtest(base: Config, spec: BacktestSpec, db: Path | None = None) -> PreparedBacktest:
    """Build the backtest's engine (not started): :func:`backtest_config`, the file (or its window) as the
    replayed source, a store in memory unless ``db`` names a file.

    Raises:
        BacktestError, ConfigError, EngineError, ReplayError: see :func:`backtest_config`; the file is not a
            replayable data file; no candle lies in the window.
    """
    config = backtest_config(base, spec)
    interval = config.market.interval_minutes * 60 if config.market.interval_minutes else None
    replay, window = _windowed(replay_file(spec.data, spec.pair, interval), spec)
    source = ReplayMarketSource(replay, None, spec.data.name, yield_interval_s=BACKTEST_YIELD_S)
    options = RunOptions(durable_intents=False, record_every_candle=False, id_prefix="bt")
    engine = Engine.from_config(config, db, source=source, options=options)
    note = account_note(base, config)
    if note is not None:
        engine.notes.append(note)
    return PreparedBacktest(engine, window)


async def run_prepared(
    prepared: PreparedBacktest, during: Callable[[Engine], Coroutine[Any, Any, None]] | None = None
) -> BacktestOutcome:
    """Run the prepared engine to the end of its data (``during`` runs beside it, cancelled at the end) and
    collect what it did: the refusals recorded, the fills, the orders the venue rejected, the performance."""
    engine = prepared.engine
    async with engine.serve() as facade:
        async with anyio.create_task_group() as tg:
            if during is not None:
                tg.start_soon(during, engine)
            await engine.done.wait()
            tg.cancel_scope.cancel()
        total = sum(engine.trader.refusal_counts.values())
        # What is reported is what the store holds: this run's order_refused events (the last ones).
        events, fills, rejected = await engine.read(lambda store: _recorded(store, total))
    performance = await facade.performance()  # read once stopped: the figures of the whole run
    return BacktestOutcome(engine, performance, events, fills, rejected, prepared.window)


def _recorded(store: Store, refusals: int) -> tuple[list[EventRecord], list[Fill], list[Order]]:
    events = store.tail_events(refusals, ORDER_REFUSED) if refusals else []
    rejected = [o for o in store.load_orders() if o.status is OrderStatus.REJECTED]
    return events, store.load_fills(), rejected


def run_backtest(base: Config, spec: BacktestSpec, db: Path | None = None) -> BacktestOutcome:
    """:func:`prepare_backtest` then :func:`run_prepared`, in an event loop of its own (blocks until done)."""
    prepared = prepare_backtest(base, spec, db)
    return anyio.run(run_prepared, prepared)


def candles_backtest(
    base: Config,
    spec: BacktestSpec,
    candles: Sequence[Candle],
    instruments: Mapping[str, Instrument] | None = None,
) -> BacktestView:
    """A backtest over candles already in memory (``spec.data`` only names them; ``spec.pair`` is theirs), as
    :func:`run_backtest` would run a file holding exactly those candles, summarised (blocks until done).

    Raises:
        ConfigError, EngineError: the strategy, a parameter or the pair is refused.
    """
    config = _config_of(base, spec, None)
    replay = ReplaySource.from_events(list(candles), name=spec.data.name)
    source = ReplayMarketSource(replay, None, spec.data.name, yield_interval_s=BACKTEST_YIELD_S)
    options = RunOptions(durable_intents=False, record_every_candle=False, id_prefix="bt")
    engine = Engine.from_config(config, None, source=source, options=options, instruments=instruments)
    note = account_note(base, config)
    if note is not None:
        engine.notes.append(note)
    prepared = PreparedBacktest(engine, _window_view(replay.events, replay.last_ts_ns, spec))
    return summarize(anyio.run(run_prepared, prepared), spec.data.name)


def summarize(outcome: BacktestOutcome, data_name: str) -> BacktestView:
    """The compact summary of a backtest (counts, not every fill)."""
    engine = outcome.engine
    slot = engine.slots[0]
    refused = engine.trader.refusal_counts
    return BacktestView(
        data=data_name,
        strategy=slot.strategy.kind,
        params={k: str(v) for k, v in slot.strategy.shown_values().items()},  # as backtest --json shows them
        pair=engine.config.market.pair,
        quote_currency=engine.config.quote_currency,
        window=outcome.window,
        final_equity=engine.portfolio.equity(),
        metrics=outcome.performance.metrics,
        trades=len(engine.portfolio.round_trips),
        fills=len(outcome.fills),
        refusals=dict(sorted(refused.items(), key=lambda kv: (-kv[1], kv[0]))),
        guard_exits=dict(sorted(engine.trader.guard_counts.items())),
        breaker_trips=dict(sorted(engine.trader.breaker_counts.items())),
        rejected_by_venue=len(outcome.rejected),
        notes=list(engine.notes),
    )


# -- the facade's path: checked arguments, a worker process, a bounded time ------------------------------------


def resolve_data_name(name: str, data_dir: Path) -> Path:
    """The data file a client names: ``sample`` (the shipped capture) or a ``.csv`` / ``.json`` file inside
    ``data_dir``, named relative to it (``XBTUSD_60.csv``, ``kraken/XBTUSD_60.csv``).

    Raises:
        InvalidRequest: an absolute path, a ``..`` or a hidden segment, a name leading outside the folder through a
            link, another kind of file, or no such file (each in one sentence).
    """
    if name == SAMPLE_NAME:
        return shipped_sample()
    shown = ascii(name[:60])
    if PurePosixPath(name).is_absolute() or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise InvalidRequest(f"data {shown} is a path: name a file inside the engine's data folder, or 'sample'")
    if ".." in PurePosixPath(name).parts:
        raise InvalidRequest(f"data {shown} climbs out of the engine's data folder with '..', which is refused")
    if len(name) > _MAX_NAME or not _DATA_NAME.fullmatch(name):
        raise InvalidRequest(
            f"data {shown} is not a file name inside the engine's data folder (letters, digits, '_', '.' and '-', "
            "folders separated by '/', no segment starting with '.'), nor 'sample'"
        )
    if not name.lower().endswith(DATA_SUFFIXES):
        raise InvalidRequest(f"data {shown} is not a data file: only .csv and .json files can be replayed")
    folder = data_dir.resolve()
    path = (folder / name).resolve()  # follows every link on the way
    if not path.is_relative_to(folder):
        raise InvalidRequest(f"data {shown} leads outside the engine's data folder through a link, which is refused")
    if not path.is_file():
        listed = ", ".join(_data_files(folder)[:10]) or "none"
        raise InvalidRequest(f"no data file {shown} in the engine's data folder (there: {listed}; or 'sample')")
    return path


def _data_files(folder: Path) -> list[str]:
    """The names of the data files at the top of ``folder`` that a client may name (what the refusal lists)."""
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if _DATA_NAME.fullmatch(p.name)
        and p.name.lower().endswith(DATA_SUFFIXES)
        and p.resolve().is_relative_to(folder)
        and p.is_file()
    )


def parse_when(text: str, *, what: Literal["start", "end"]) -> int:
    """An ISO date or date-time as UTC ns. A date is a whole day: a start at its 00:00, an end at its 24:00; a
    date-time without a zone is UTC.

    Raises:
        InvalidRequest: anything else.
    """
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            moment = day + timedelta(days=1) if what == "end" else day
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    except ValueError:
        raise InvalidRequest(
            f"{what} {text[:40]!a} is not an ISO date such as 2024-01-31 or date-time such as 2024-01-31T12:00Z"
        ) from None
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _checked_spec(
    base: Config,
    kind: str,
    params: Mapping[str, object],
    pair: str,
    data: str,
    start: str | None,
    end: str | None,
) -> BacktestSpec:
    try:
        strategy_class(kind).validate(params, base=None)
        refuse_book_strategy(kind)
    except (ParamError, BacktestError) as exc:
        raise InvalidRequest(str(exc)) from None
    path, start_ns, end_ns = checked_data(base, pair, data, start, end)
    return BacktestSpec(path, kind, dict(params), pair, start_ns=start_ns, end_ns=end_ns)


def checked_data(
    base: Config, pair: str, data: str, start: str | None, end: str | None
) -> tuple[Path, int | None, int | None]:
    """The data file a client names (see :func:`resolve_data_name`) and its window in ns, checked.

    Raises:
        InvalidRequest: no pair, a window that is not ISO dates or not in order, or a refused data name.
    """
    if not pair.strip():
        raise InvalidRequest("a pair is needed, such as BTC/USD")
    start_ns = parse_when(start, what="start") if start is not None else None
    end_ns = parse_when(end, what="end") if end is not None else None
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise InvalidRequest(f"the window's start {start} is not before its end {end}")
    return resolve_data_name(data, base.data_dir), start_ns, end_ns


def backtest_summary(base: Config, spec: BacktestSpec, data_name: str) -> BacktestView:
    """:func:`run_backtest` and :func:`summarize` (the worker process runs this); a refusal of the run comes back
    as :class:`InvalidRequest`, with the file's path replaced by the name the client gave."""
    try:
        return summarize(run_backtest(base, spec), data_name)
    except (BacktestError, ConfigError, EngineError, ReplayError, ParamError, OSError) as exc:
        message = str(exc).replace(str(spec.data), data_name).rstrip(".")
        raise InvalidRequest(message) from None


async def backtest_in_worker(
    base: Config,
    *,
    kind: str,
    params: Mapping[str, object],
    pair: str,
    data: str,
    start: str | None = None,
    end: str | None = None,
    timeout_s: float = BACKTEST_TIMEOUT_S,
) -> BacktestView:
    """Check the arguments, then run the backtest in a worker process within ``timeout_s`` (see the module
    docstring); nothing of the calling engine is read or changed beyond ``base``.

    Raises:
        InvalidRequest: a bad argument, a file that is not a replayable data file, or a run longer than
            ``timeout_s`` (its worker is killed).
        NotAllowed: another backtest of this process is running.
    """
    spec = _checked_spec(base, kind, params, pair, data, start, end)
    return await run_in_worker(
        backtest_summary,
        base,
        spec,
        data,
        kind="backtest",
        timeout_s=timeout_s,
        too_long="ask for a shorter window",
    )
