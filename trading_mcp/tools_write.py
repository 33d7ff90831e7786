"""State-changing tools. Not registered in read-only mode.

Each passes ``source=mcp:<client>`` so the facade records the call (arguments, result, client) in the event
log; refusals are recorded by the server's audit middleware (``server.py``). Each result carries ``mode``
(paper or live). Tools that change what a resource shows nudge the notifier so subscribers hear about it at
once.

``emergency_stop`` is confirmed by a human: through elicitation when the client declared it (both protocol
eras, via ``Resolve``/``Elicit``), otherwise by a single-use, short-lived token returned by a first call, bound to
the client that asked and to every argument (``confirm.py``); its issue is recorded in the event log (without the
token). A ``reason`` is client text: it passes through the redactor before the engine records it.
"""

from typing import Annotated

from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from engine.runtime.views import RiskView, TradingStateView, TuneResultView
from trading_mcp.arguments import ScalarValue
from trading_mcp.confirm import ConfirmationStore
from trading_mcp.errors import Redactor, tool_errors
from trading_mcp.identity import client_identity
from trading_mcp.models import EmergencyStopResult, StopConfirmation, StrategyStateView, engine_values
from trading_mcp.notify import ChangeNotifier
from trading_mcp.ports import Facade
from trading_mcp.registry import ToolSet
from trading_mcp.source import source_of
from trading_mcp.tools_orders import ORDER_TOOLS, register_order_tools

__all__ = ["WRITE_TOOLS", "register_write_tools"]

WRITE_TOOLS = (
    "tune_strategy",
    "enable_strategy",
    "disable_strategy",
    "pause_trading",
    "resume_trading",
    "set_risk_limits",
    "emergency_stop",
    *ORDER_TOOLS,
)

Name = Annotated[str, Field(min_length=1, max_length=64, description="Strategy name, as list_strategies shows it.")]
Reason = Annotated[str, Field(max_length=500, description="Why; recorded in the event log.")]

# Hints only: the server enforces every rule itself.
_SAFE_CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
_RISKY_CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
_TUNE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
_STOP = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)


def _elicitation_supported(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (the only shape before modes existed) means form support; url-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def register_write_tools(
    tools: ToolSet, facade: Facade, notifier: ChangeNotifier, confirmations: ConfirmationStore, redactor: Redactor
) -> None:
    """Add the state-changing tools to ``tools``."""

    def strategy_uris(name: str) -> tuple[str, ...]:
        return ("bot://strategies", f"bot://strategies/{name}", "bot://status")

    @tools.tool(title="Tune a strategy", annotations=_TUNE)
    async def tune_strategy(
        name: Name,
        params: Annotated[
            dict[str, ScalarValue],
            Field(description='Parameter name -> new value, e.g. {"fast": 10}; see list_strategies.'),
        ],
        ctx: Context,
        preview: Annotated[bool, Field(description="true: only show the change, apply nothing.")] = False,
    ) -> TuneResultView:
        """Change parameters of a strategy. Values are checked against the strategy's declared schema and the
        operator's tuning limits; preview=true returns the before/after diff without applying. Applying
        records before and after in the event log.
        """
        with tool_errors():
            values = engine_values(params, what="parameters")
            result = await facade.tune_strategy(name, values, preview=preview, source=source_of(ctx.session))
        if result.applied:
            notifier.touch(*strategy_uris(name))
        return result

    @tools.tool(title="Enable a strategy", annotations=_RISKY_CHANGE)
    async def enable_strategy(name: Name, ctx: Context) -> StrategyStateView:
        """Let a strategy trade again (it still obeys the trading state and the risk limits)."""
        with tool_errors():
            view = await facade.set_strategy_enabled(name, True, source=source_of(ctx.session))
        notifier.touch(*strategy_uris(name))
        return StrategyStateView(mode=facade.mode, strategy=view)

    @tools.tool(title="Disable a strategy", annotations=_SAFE_CHANGE)
    async def disable_strategy(name: Name, ctx: Context) -> StrategyStateView:
        """Stop a strategy from opening new positions. Its open orders and positions are left as they are."""
        with tool_errors():
            view = await facade.set_strategy_enabled(name, False, source=source_of(ctx.session))
        notifier.touch(*strategy_uris(name))
        return StrategyStateView(mode=facade.mode, strategy=view)

    @tools.tool(title="Pause trading", annotations=_SAFE_CHANGE)
    async def pause_trading(ctx: Context, reason: Reason = "") -> TradingStateView:
        """Pause all strategies: no new orders until resume_trading. Open orders and positions stay."""
        with tool_errors():
            state = await facade.pause(source=source_of(ctx.session), reason=redactor.text(reason))
        notifier.touch("bot://status", "bot://risk")
        return state

    @tools.tool(title="Resume trading", annotations=_RISKY_CHANGE)
    async def resume_trading(ctx: Context) -> TradingStateView:
        """Resume trading after a pause or an emergency stop made through MCP (this clears the latch). A halt the
        operator made from their shell (trading-mcp halt; get_status shows it) is refused here: only the operator
        lifts it, with trading-mcp resume. Ask the user to do that rather than retrying."""
        with tool_errors():
            state = await facade.resume(source=source_of(ctx.session))
        notifier.touch("bot://status", "bot://risk")
        return state

    @tools.tool(title="Set risk limits", annotations=_RISKY_CHANGE)
    async def set_risk_limits(
        changes: Annotated[
            dict[str, ScalarValue],
            Field(
                description='Limit or account rule name -> new value, e.g. {"max_order_qty": "0.5"} or '
                '{"max_daily_loss": "300", "max_drawdown_pct": "15"}. See get_risk (limits and rules).'
            ),
        ],
        ctx: Context,
    ) -> RiskView:
        """Change risk limits and account rules (max_drawdown_pct, max_daily_loss, reduce_at_drawdown_pct,
        flatten_on_drawdown). Tightening is always allowed; loosening never beyond the operator's caps."""
        with tool_errors():
            values = engine_values(changes, what="limits")
            view = await facade.set_risk_limits(values, source=source_of(ctx.session))
        notifier.touch("bot://risk")
        return view

    async def ask_human(ctx: Context, flatten: bool, confirmation_token: str | None) -> Elicit[StopConfirmation] | None:
        # A token means the token path was chosen; without elicitation support there is nobody to ask here.
        if confirmation_token is not None or not _elicitation_supported(ctx):
            return None
        then = " and close every position at market" if flatten else ""
        return Elicit(
            f"EMERGENCY STOP ({facade.mode.upper()} on {facade.venue}): cancel every open order{then}, "
            "and halt trading until someone resumes it. Confirm?",
            StopConfirmation,
        )

    @tools.tool(title="Emergency stop", annotations=_STOP)
    async def emergency_stop(
        confirmed: Annotated[ElicitationResult[StopConfirmation], Resolve(ask_human)],
        ctx: Context,
        flatten: Annotated[bool, Field(description="Also close every position at market.")] = False,
        reason: Reason = "",
        confirmation_token: Annotated[
            str | None,
            Field(max_length=100, description="The token a first call returned (token path only)."),
        ] = None,
    ) -> EmergencyStopResult:
        """Cancel every open order, optionally flatten positions, and halt trading until resume_trading. Needs
        a human's confirmation: the client asks when it can; otherwise the first call returns a single-use
        token (valid briefly) and a second call with the same arguments and that token executes.
        Idempotent; the result reports the state after the stop.
        """
        arguments = {"flatten": flatten, "reason": reason}
        client = client_identity(ctx.request_context)
        if confirmation_token is not None:
            with tool_errors():
                confirmations.redeem(client, confirmation_token, "emergency_stop", arguments)
        elif not isinstance(confirmed, AcceptedElicitation):
            raise ToolError(f"Emergency stop not confirmed: the user chose {confirmed.action}. Nothing was done.")
        elif confirmed.data is None:
            with tool_errors():
                issued = confirmations.issue(client, "emergency_stop", arguments)
            await facade.record_event(
                "confirmation_issued",
                source_of(ctx.session),
                {
                    "tool": "emergency_stop",
                    "arguments": redactor.payload(arguments),
                    "expires_in_s": round(confirmations.ttl_s),
                    "mode": facade.mode,
                },
            )
            then = ", close every position at market" if flatten else ""
            return EmergencyStopResult(
                status="confirmation_required",
                mode=facade.mode,
                message=(
                    f"Not executed yet. This will cancel every open order{then} and halt {facade.mode} "
                    f"trading (venue: {facade.venue}) until resume_trading. Ask the user; if they agree, call "
                    "emergency_stop again over this same connection, with the same flatten and reason and this "
                    "confirmation_token, within "
                    f"{confirmations.ttl_s:g} s."
                ),
                confirmation_token=issued.token,
                expires_in_s=round(confirmations.ttl_s),
                stop=None,
            )
        elif not confirmed.data.confirm:
            raise ToolError("Emergency stop not confirmed: the box was left unticked. Nothing was done.")
        with tool_errors():
            stop = await facade.emergency_stop(
                flatten=flatten, source=source_of(ctx.session), reason=redactor.text(reason)
            )
        notifier.touch("bot://status", "bot://orders", "bot://positions", "bot://risk", "bot://balance")
        return EmergencyStopResult(
            status="stopped",
            mode=stop.mode,
            message=(
                "Trading is halted until resume_trading."
                if not stop.already_halted
                else "Trading was already halted; open orders were cancelled again."
            ),
            confirmation_token=None,
            expires_in_s=None,
            stop=stop,
        )

    register_order_tools(tools, facade, notifier, confirmations)
