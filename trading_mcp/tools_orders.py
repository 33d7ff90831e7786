"""``cancel_order`` and ``close_position``: one order, one position, confirmed by a human like ``emergency_stop``.

Through elicitation when the client declared it (both protocol eras, via ``Resolve``/``Elicit``), otherwise by a
single-use, short-lived token from the same :class:`~trading_mcp.confirm.ConfirmationStore` (same caps: pending
tokens and failed redemptions per client), bound to the client that asked and to every argument. The engine
refuses what there is nothing to do for (an unknown or closed order, a flat position) in one sentence, and
refuses the client a close while the operator's halt stands. Registered with the write tools: never in
read-only mode.
"""

from typing import Annotated, Literal

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from engine.runtime.views import OrderView
from trading_mcp.confirm import ConfirmationStore
from trading_mcp.errors import tool_errors
from trading_mcp.identity import client_identity
from trading_mcp.notify import ChangeNotifier
from trading_mcp.ports import Facade
from trading_mcp.registry import ToolSet
from trading_mcp.source import source_of

__all__ = ["ORDER_TOOLS", "OrderActionResult", "OrderConfirmation", "register_order_tools"]

ORDER_TOOLS = ("cancel_order", "close_position")

_ORDER_CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)

OrderId = Annotated[str, Field(min_length=1, max_length=64, description="The order's client_id, as get_orders shows.")]
Pair = Annotated[str, Field(min_length=1, max_length=32, description="The pair, any spelling: BTC/USD, XBTUSD.")]
Strategy = Annotated[
    str | None,
    Field(max_length=64, description="Only this strategy's position; omitted: every strategy's in the pair."),
]
Token = Annotated[str | None, Field(max_length=100, description="The token a first call returned (token path only).")]


class OrderConfirmation(BaseModel):
    """The form a human fills in to confirm cancelling an order or closing a position."""

    confirm: bool = Field(description="Tick to go ahead.")


class OrderActionResult(BaseModel):
    """What ``cancel_order`` or ``close_position`` did, or what it will do once confirmed."""

    model_config = ConfigDict(frozen=True)

    status: Literal["done", "confirmation_required"]
    mode: Literal["paper", "live"]
    message: str
    confirmation_token: str | None = Field(
        None, description="Pass this back as confirmation_token (same arguments) to go ahead."
    )
    expires_in_s: int | None = None
    orders: list[OrderView] = Field(
        default_factory=list, description="The cancelled order, or the market sells that close the position."
    )


def _elicitation_supported(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def register_order_tools(
    tools: ToolSet, facade: Facade, notifier: ChangeNotifier, confirmations: ConfirmationStore
) -> None:
    """Add ``cancel_order`` and ``close_position`` to ``tools``."""

    def where() -> str:
        return f"{facade.mode.upper()} on {facade.venue}"

    async def confirm(
        ctx: Context, tool: str, arguments: dict[str, object], what: str, token: str | None, answer: object
    ) -> OrderActionResult | None:
        """None when confirmed (go ahead); the token to ask the human with when not yet; raises when refused."""
        client = client_identity(ctx.request_context)
        if token is not None:
            with tool_errors():
                confirmations.redeem(client, token, tool, arguments)
            return None
        if not isinstance(answer, AcceptedElicitation):
            action = getattr(answer, "action", "no answer")
            raise ToolError(f"Not confirmed: the user chose {action}. Nothing was done.")
        if answer.data is not None:
            if not answer.data.confirm:
                raise ToolError("Not confirmed: the box was left unticked. Nothing was done.")
            return None
        with tool_errors():
            issued = confirmations.issue(client, tool, arguments)
        await facade.record_event(
            "confirmation_issued",
            source_of(ctx.session),
            {"tool": tool, "arguments": arguments, "expires_in_s": round(confirmations.ttl_s), "mode": facade.mode},
        )
        return OrderActionResult(
            status="confirmation_required",
            mode=facade.mode,
            message=(
                f"Not executed yet. This will {what} ({where()}). Ask the user; if they agree, call {tool} again "
                f"over this same connection, with the same arguments and this confirmation_token, within "
                f"{confirmations.ttl_s:g} s."
            ),
            confirmation_token=issued.token,
            expires_in_s=round(confirmations.ttl_s),
        )

    async def ask_cancel(
        ctx: Context, order_id: str, confirmation_token: str | None
    ) -> Elicit[OrderConfirmation] | None:
        if confirmation_token is not None or not _elicitation_supported(ctx):
            return None
        return Elicit(f"CANCEL ORDER {order_id} ({where()}). Confirm?", OrderConfirmation)

    @tools.tool(title="Cancel one order", annotations=_ORDER_CHANGE)
    async def cancel_order(
        order_id: OrderId,
        confirmed: Annotated[ElicitationResult[OrderConfirmation], Resolve(ask_cancel)],
        ctx: Context,
        confirmation_token: Token = None,
    ) -> OrderActionResult:
        """Cancel one open order (its client_id from get_orders). Needs a human's confirmation: the client asks
        when it can; otherwise the first call returns a single-use token (valid briefly) and a second call with
        the same order_id and that token executes. An unknown or already closed order is refused.
        """
        pending = await confirm(
            ctx, "cancel_order", {"order_id": order_id}, f"cancel order {order_id}", confirmation_token, confirmed
        )
        if pending is not None:
            return pending
        with tool_errors():
            view = await facade.cancel_order(order_id, source=source_of(ctx.session))
        notifier.touch("bot://orders", "bot://status", "bot://balance")
        message = (
            f"Order {view.client_id} is {view.status}."
            if view.status in ("canceled", "filled", "rejected", "expired")
            else f"Cancel of order {view.client_id} requested; the venue has not confirmed it yet (see get_orders)."
        )
        return OrderActionResult(status="done", mode=facade.mode, message=message, orders=[view])

    def close_what(pair: str, strategy: str | None) -> str:
        whose = f"strategy {strategy}'s position" if strategy is not None else "every strategy's position"
        return f"close {whose} in {pair} with a market sell"

    async def ask_close(
        ctx: Context, pair: str, strategy: str | None, confirmation_token: str | None
    ) -> Elicit[OrderConfirmation] | None:
        if confirmation_token is not None or not _elicitation_supported(ctx):
            return None
        return Elicit(f"{close_what(pair, strategy).upper()} ({where()}). Confirm?", OrderConfirmation)

    @tools.tool(title="Close a position", annotations=_ORDER_CHANGE)
    async def close_position(
        pair: Pair,
        confirmed: Annotated[ElicitationResult[OrderConfirmation], Resolve(ask_close)],
        ctx: Context,
        strategy: Strategy = None,
        confirmation_token: Token = None,
    ) -> OrderActionResult:
        """Close a position at market: a sell of exactly its quantity (the strategy's open orders in that pair are
        cancelled first); without strategy, every strategy's position in the pair. Needs a human's confirmation,
        like cancel_order. A flat position is refused, and so is any close while the operator's halt stands.
        """
        arguments: dict[str, object] = {"pair": pair, "strategy": strategy}
        what = close_what(pair, strategy)
        pending = await confirm(ctx, "close_position", arguments, what, confirmation_token, confirmed)
        if pending is not None:
            return pending
        with tool_errors():
            view = await facade.close_position(pair, strategy, source=source_of(ctx.session))
        notifier.touch("bot://orders", "bot://positions", "bot://status", "bot://balance")
        sold = ", ".join(f"{o.qty} {o.pair} for {o.strategy}" for o in view.orders)
        return OrderActionResult(
            status="done", mode=view.mode, message=f"Sent market sells: {sold}.", orders=view.orders
        )
