"""The ``bot://`` resources: JSON documents whose schemas are the engine's views (``engine.runtime.views``).

* ``bot://status`` (``StatusView``): paper or live, trading state, data source, uptime, strategies running
* ``bot://balance`` (``BalanceView``), ``bot://positions`` (``PositionsView``), ``bot://orders``
  (``OrdersView``, open orders), ``bot://trades`` (``TradesView``, recent fills)
* ``bot://performance``, ``bot://performance/strategy/{name}``, ``bot://performance/pair/{pair}``
  (``PerformanceView``)
* ``bot://strategies`` (``StrategiesView``), ``bot://strategies/{name}`` (``StrategyView``: parameter schema
  and current values)
* ``bot://risk`` (``RiskView``: limits, caps, usage), ``bot://market/{pair}`` (``MarketView``: ticker, top
  of book), ``bot://events`` (``EventsView``: tail of the event log)
* ``bot://markets`` (``MarketsView``: the market scanner's ranking, every quote, the best 20 at 1000 USD)

Decimals are JSON strings. Static resources close over the facade (the SDK gives them no context). A pair in a
URI is written without its slash (``bot://market/BTC-USD``; any spelling works: ``XBTUSD``, ``btcusd``), since a
slash would end the URI's segment; documents name it canonically (``BTC/USD``).
"""

from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from trading_mcp.errors import Redactor, resource_errors
from trading_mcp.models import EventsView, resolve_pair
from trading_mcp.ports import Facade

__all__ = ["RESOURCE_TEMPLATES", "RESOURCE_URIS", "register_resources"]

RESOURCE_URIS = (
    "bot://status",
    "bot://balance",
    "bot://positions",
    "bot://orders",
    "bot://trades",
    "bot://performance",
    "bot://strategies",
    "bot://risk",
    "bot://events",
    "bot://markets",
)
RESOURCE_TEMPLATES = (
    "bot://performance/strategy/{name}",
    "bot://performance/pair/{pair}",
    "bot://strategies/{name}",
    "bot://market/{pair}",
)
_JSON = "application/json"
EVENTS_TAIL = 50


def _json(view: BaseModel) -> str:
    return view.model_dump_json()


def register_resources(mcp: MCPServer[Any], facade: Facade, redactor: Redactor) -> None:
    """Register every ``bot://`` resource on ``mcp``."""

    @mcp.resource("bot://status", name="status", title="Engine status", mime_type=_JSON)
    async def status() -> str:
        """Paper or live, venue, trading state, data source, uptime, strategies running."""
        return _json(await facade.status())

    @mcp.resource("bot://balance", name="balance", title="Balances", mime_type=_JSON)
    async def balance() -> str:
        """Equity, cash and per-asset balances (total, held, available)."""
        return _json(await facade.balance())

    @mcp.resource("bot://positions", name="positions", title="Open positions", mime_type=_JSON)
    async def positions() -> str:
        """Open positions per strategy and pair, with mark price and PnL."""
        return _json(await facade.positions())

    @mcp.resource("bot://orders", name="orders", title="Open orders", mime_type=_JSON)
    async def orders() -> str:
        """Open orders."""
        return _json(await facade.orders(open_only=True))

    @mcp.resource("bot://trades", name="trades", title="Recent fills", mime_type=_JSON)
    async def trades() -> str:
        """Most recent fills, newest last."""
        return _json(await facade.trades())

    @mcp.resource("bot://performance", name="performance", title="Performance", mime_type=_JSON)
    async def performance() -> str:
        """Performance metrics of the whole account."""
        return _json(await facade.performance())

    @mcp.resource(
        "bot://performance/strategy/{name}",
        name="performance_by_strategy",
        title="Strategy performance",
        mime_type=_JSON,
    )
    async def performance_by_strategy(name: str) -> str:
        """Performance metrics of one strategy."""
        with resource_errors():
            return _json(await facade.performance(strategy=name))

    @mcp.resource(
        "bot://performance/pair/{pair}", name="performance_by_pair", title="Pair performance", mime_type=_JSON
    )
    async def performance_by_pair(pair: str) -> str:
        """Performance metrics of one pair."""
        with resource_errors():
            return _json(await facade.performance(pair=resolve_pair(pair, facade.pair_names())))

    @mcp.resource("bot://strategies", name="strategies", title="Strategies", mime_type=_JSON)
    async def strategies() -> str:
        """Every strategy: kind, pair, enabled, weight, parameter schema and current values."""
        return _json(await facade.strategies())

    @mcp.resource("bot://strategies/{name}", name="strategy", title="One strategy", mime_type=_JSON)
    async def strategy(name: str) -> str:
        """One strategy: parameter schema (type, bounds, default) and current values."""
        with resource_errors():
            return _json(await facade.strategy(name))

    @mcp.resource("bot://risk", name="risk", title="Risk limits", mime_type=_JSON)
    async def risk() -> str:
        """Risk limits, the operator's caps and current usage; trading state."""
        return _json(await facade.risk())

    @mcp.resource("bot://market/{pair}", name="market", title="Market", mime_type=_JSON)
    async def market(pair: str) -> str:
        """Last price and top of book of one pair."""
        with resource_errors():
            return _json(await facade.market(resolve_pair(pair, facade.pair_names())))

    @mcp.resource("bot://markets", name="markets", title="Market scanner", mime_type=_JSON)
    async def markets() -> str:
        """The market scanner's ranking of every quote (volume compared in USD): the best 20 pairs at an order
        size of 1000 USD, the pairs excluded and why (the tool scan_markets chooses the quote, count and size)."""
        with resource_errors():
            return _json(await facade.markets(quote="any"))

    @mcp.resource("bot://events", name="events", title="Event log", mime_type=_JSON)
    async def events() -> str:
        """The last events of the engine's append-only log (changes, refusals, fills, halts)."""
        tail = await facade.events(limit=EVENTS_TAIL)
        return _json(EventsView(events=[e.model_copy(update={"payload": redactor.payload(e.payload)}) for e in tail]))
