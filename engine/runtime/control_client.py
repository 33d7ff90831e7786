"""The facade of an engine in another process, reached through its control socket.

:class:`RemoteFacade` has the same methods as :class:`~engine.runtime.facade.EngineFacade` (the MCP layer's
``Facade`` protocol), so an MCP server runs over it unchanged: in the gateway process of ``run --mcp-http``, or in
a ``serve`` that attaches to a running engine. Refusals come back as the facade's own exceptions; if the engine
goes away, every call fails with :class:`EngineGone` and :attr:`RemoteFacade.closed` is set.

Reads are coalesced: identical reads asked while one is on its way share its answer, and an answer is reused for
``read_cache_s`` (0.1 s) unless something changed meanwhile (a change made through this facade, or one the engine
pushes). One gateway serves many MCP clients; eight clients asking get_status back to back then cost the engine a
handful of calls a second, not hundreds, and a client never sees a state older than a tenth of a second (its own
changes at once).
"""

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from itertools import count
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel

from engine.errors import FacadeError
from engine.runtime.control_protocol import CALLS, PROTOCOL, decode, encode, error_from_wire
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

__all__ = ["EngineGone", "RemoteFacade"]

V = TypeVar("V", bound=BaseModel)
ANSWER_MAX = 64 << 20
ProgressFn = Callable[[float, float, str], Awaitable[None]]


class EngineGone(FacadeError):
    """The engine's control connection closed: it stopped (or cannot be reached); nothing more can be asked."""


class _Pending:
    __slots__ = ("answer", "done", "progress")

    def __init__(self, progress: ProgressFn | None) -> None:
        self.done = anyio.Event()
        self.answer: dict[str, Any] = {}
        self.progress = progress


def _decimal_text(value: object) -> object:
    """Arguments as JSON: Decimals (from the MCP layer's strict parsing) travel as their exact text."""
    if isinstance(value, Mapping):
        return {str(k): _decimal_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decimal_text(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return format(value, "f") if hasattr(value, "as_tuple") else str(value)


class _Flight:
    """A read on its way, whose answer callers asking the same read meanwhile share."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: FacadeError | None = None


class RemoteFacade:
    """An engine's facade over its control socket. Use :meth:`connect`."""

    read_cache_s = 0.1

    def __init__(self, stream: SocketStream, hello: Mapping[str, Any]) -> None:
        self._cache: dict[str, tuple[float, Any]] = {}
        self._flights: dict[tuple[int, str], _Flight] = {}
        self._generation = 0  # moves on at every change: an answer asked for before it is neither shared nor kept
        self._stream = stream
        self._hello = hello
        self._ids = count(1)
        self._pending: dict[int, _Pending] = {}
        self._subscribers: list[Callable[[set[str]], None]] = []
        self._lock = anyio.Lock()
        self.closed = anyio.Event()

    @classmethod
    @asynccontextmanager
    async def connect(cls, path: Path) -> AsyncIterator["RemoteFacade"]:
        """Connect to the engine listening at ``path`` and keep the connection until the block exits.

        Raises:
            EngineGone: nothing listens there, or it is not an engine of this protocol.
        """
        try:
            stream = await anyio.connect_unix(path)
        except OSError as exc:
            raise EngineGone(f"no engine answers at {path}: {exc.strerror or exc}") from None
        receive = BufferedByteReceiveStream(stream)
        try:
            with anyio.fail_after(10):
                hello = decode(await receive.receive_until(b"\n", ANSWER_MAX)).get("hello")
        except (TimeoutError, anyio.EndOfStream, anyio.IncompleteRead, ValueError, OSError) as exc:
            await stream.aclose()
            raise EngineGone(f"the engine at {path} did not greet ({type(exc).__name__})") from None
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            await stream.aclose()
            raise EngineGone(f"the engine at {path} speaks another control protocol ({hello!r:.80})")
        facade = cls(stream, hello)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(facade._read_loop, receive)
                try:
                    await facade._call("subscribe", {})
                    yield facade
                finally:
                    # Closing the stream ends the read loop (its read is woken, not cancelled: a read cancelled
                    # as its socket turns readable makes asyncio report an error in a callback). Shielded: an
                    # await that raised a cancellation here would replace, and so hide, an error leaving the block.
                    with anyio.CancelScope(shield=True):
                        await stream.aclose()
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()  # once more if the group never started; closing twice is harmless

    async def _read_loop(self, receive: BufferedByteReceiveStream) -> None:
        try:
            while True:
                message = decode(await receive.receive_until(b"\n", ANSWER_MAX))
                if "changes" in message:
                    self._forget()
                    topics = {str(t) for t in message["changes"]}
                    for callback in list(self._subscribers):
                        callback(topics)
                    continue
                pending = self._pending.get(message.get("id"))  # type: ignore[arg-type]
                if pending is None:
                    continue
                if "progress" in message:
                    if pending.progress is not None:
                        done, total, note = message["progress"]
                        await pending.progress(float(done), float(total), str(note))
                    continue
                pending.answer = message
                pending.done.set()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        except ValueError:
            pass  # a malformed line: the connection cannot be trusted further
        finally:
            self.closed.set()
            for pending in self._pending.values():
                pending.done.set()

    async def _call(self, name: str, args: Mapping[str, object], progress: ProgressFn | None = None) -> Any:
        if self.closed.is_set():
            raise EngineGone("the engine's control connection is closed (the engine stopped)")
        call_id = next(self._ids)
        pending = self._pending[call_id] = _Pending(progress)
        try:
            message = {"id": call_id, "call": name, "args": _decimal_text(args)}
            try:
                async with self._lock:
                    await self._stream.send(encode(message))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                raise EngineGone("the engine's control connection is closed (the engine stopped)") from None
            await pending.done.wait()
        finally:
            del self._pending[call_id]
        answer = pending.answer
        if not answer:
            raise EngineGone("the engine's control connection closed before it answered")
        if "error" in answer:
            raise error_from_wire(answer["error"])
        return answer.get("ok")

    async def _view(self, name: str, view: type[V], args: Mapping[str, object] | None = None) -> V:
        if CALLS[name].kind != "read":
            self._forget()  # this client's own change: reads from now on ask the engine
            try:
                return view.model_validate(await self._call(name, args or {}))
            finally:
                self._forget()  # including those asked while the change was on its way
        return cast(V, await self._read(name, args or {}, view.model_validate))

    def _forget(self) -> None:
        self._cache.clear()
        self._generation += 1

    async def _read(self, name: str, args: Mapping[str, object], make: Callable[[Any], Any]) -> Any:
        """A read, coalesced with identical ones on their way and reused while fresh (see the module)."""
        if self.closed.is_set():  # no answer from an engine that has gone, however fresh
            raise EngineGone("the engine's control connection is closed (the engine stopped)")
        key = f"{name}:{json.dumps(_decimal_text(args), sort_keys=True)}"
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] <= self.read_cache_s:
            return cached[1]
        generation = self._generation
        flight = self._flights.get((generation, key))
        if flight is not None:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        flight = self._flights[(generation, key)] = _Flight()
        asked = time.monotonic()
        try:
            flight.value = make(await self._call(name, args))
        except FacadeError as exc:
            flight.error = exc
            raise
        finally:
            del self._flights[(generation, key)]
            flight.done.set()
        if generation == self._generation:  # nothing changed while it was on its way
            self._cache[key] = (asked, flight.value)
        return flight.value

    # -- identity (from the engine's greeting) ----------------------------------------------------------------
    @property
    def mode(self) -> Literal["paper", "live"]:
        return cast(Literal["paper", "live"], self._hello["mode"])

    @property
    def venue(self) -> str:
        return str(self._hello["venue"])

    def pair_names(self) -> list[str]:
        return [str(p) for p in self._hello.get("pairs", [])]

    def strategy_names(self) -> list[str]:
        return [str(s) for s in self._hello.get("strategies", [])]

    def subscribe_changes(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # -- reads ------------------------------------------------------------------------------------------------
    async def status(self) -> StatusView:
        return await self._view("status", StatusView)

    async def balance(self) -> BalanceView:
        return await self._view("balance", BalanceView)

    async def positions(self) -> PositionsView:
        return await self._view("positions", PositionsView)

    async def orders(self, open_only: bool = True, limit: int = 100) -> OrdersView:
        return await self._view("orders", OrdersView, {"open_only": open_only, "limit": limit})

    async def trades(self, limit: int = 50) -> TradesView:
        return await self._view("trades", TradesView, {"limit": limit})

    async def performance(self, strategy: str | None = None, pair: str | None = None) -> PerformanceView:
        return await self._view("performance", PerformanceView, {"strategy": strategy, "pair": pair})

    async def strategies(self) -> StrategiesView:
        return await self._view("strategies", StrategiesView)

    async def strategy(self, name: str) -> StrategyView:
        return await self._view("strategy", StrategyView, {"name": name})

    async def risk(self) -> RiskView:
        return await self._view("risk", RiskView)

    async def market(self, pair: str) -> MarketView:
        return await self._view("market", MarketView, {"pair": pair})

    async def markets(self, quote: str = "USD", top: int = 20, size: float | str = 1000.0) -> MarketsView:
        return await self._view("markets", MarketsView, {"quote": quote, "top": top, "size": size})

    async def events(self, limit: int = 50, kind: str | None = None) -> list[EventView]:
        items = await self._read(
            "events", {"limit": limit, "kind": kind}, lambda answer: [EventView.model_validate(i) for i in answer]
        )
        return list(items)

    async def diagnose(self, progress: ProgressFn | None = None) -> DiagnosisView:
        return DiagnosisView.model_validate(await self._call("diagnose", {}, progress))

    # -- changes (a client's; the operator's word never comes this way) ---------------------------------------
    async def tune_strategy(
        self, name: str, params: Mapping[str, object], *, preview: bool, source: str
    ) -> TuneResultView:
        args = {"name": name, "params": dict(params), "preview": preview, "source": source}
        return await self._view("tune_strategy", TuneResultView, args)

    async def set_strategy_enabled(self, name: str, enabled: bool, *, source: str) -> StrategyView:
        return await self._view(
            "set_strategy_enabled", StrategyView, {"name": name, "enabled": enabled, "source": source}
        )

    async def pause(self, *, source: str, reason: str = "") -> TradingStateView:
        return await self._view("pause", TradingStateView, {"source": source, "reason": reason})

    async def resume(self, *, source: str) -> TradingStateView:
        return await self._view("resume", TradingStateView, {"source": source})

    async def set_risk_limits(self, changes: Mapping[str, object], *, source: str) -> RiskView:
        return await self._view("set_risk_limits", RiskView, {"changes": dict(changes), "source": source})

    async def cancel_order(self, client_id: str, *, source: str) -> OrderView:
        return await self._view("cancel_order", OrderView, {"client_id": client_id, "source": source})

    async def close_position(self, pair: str, strategy: str | None = None, *, source: str) -> OrdersView:
        return await self._view("close_position", OrdersView, {"pair": pair, "strategy": strategy, "source": source})

    async def emergency_stop(self, *, flatten: bool, source: str, reason: str = "") -> EmergencyStopView:
        args = {"flatten": flatten, "source": source, "reason": reason}
        return await self._view("emergency_stop", EmergencyStopView, args)

    async def record_event(self, kind: str, source: str, payload: Mapping[str, object]) -> None:
        self._forget()
        await self._call("record_event", {"kind": kind, "source": source, "payload": dict(payload)})


assert set(CALLS) <= {name for name in dir(RemoteFacade) if not name.startswith("_")}, "a call the client lacks"
