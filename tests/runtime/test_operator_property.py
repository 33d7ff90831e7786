"""Property: no sequence of MCP calls, operator commands, configuration changes and restarts leaves a limit above
the caps in force, or lets anyone but the operator lift the operator's halt."""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import FacadeError
from engine.risk.limits import RiskLimits
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade
from engine.runtime.operator import OperatorRequest, write_request

LIMITS = list(RiskLimits.model_fields)


@dataclass(frozen=True)
class Step:
    """One thing someone does: ``kind`` and its argument."""

    kind: str
    arg: Any = None


# The configured limits stay put (at or below the smallest caps) while the operator moves the caps: limits the
# MCP client raised under high caps must come back clamped, not be replaced by the configuration's.
LIMITS_CONFIGURED = {
    "max_order_qty": "0.5",
    "max_order_notional": "50",
    "max_pair_notional": "100",
    "max_total_notional": "200",
    "max_open_orders": 1,
    "max_orders_per_minute": 1,
    "price_band_pct": "1",
}


UNIT = {"max_order_qty": 1, "max_order_notional": 100, "max_pair_notional": 200, "max_total_notional": 400}
UNIT["max_open_orders"] = 1
UNIT["max_orders_per_minute"] = 10
UNIT["price_band_pct"] = 1
INTEGER = {"max_open_orders", "max_orders_per_minute"}


def caps_config(cap: int) -> Config:
    """Caps scaled by ``cap`` (1 to 50), over the same configured limits."""
    caps = {name: (cap * unit if name in INTEGER else str(cap * unit)) for name, unit in UNIT.items()}
    return config_from_mapping(
        {"market": {"speed": "max"}, "strategies": [], "risk": {"caps": caps, "limits": LIMITS_CONFIGURED}}
    )


steps = st.one_of(
    # A value in the caps' own units: k × the unit of cap 1, so that raising a limit is often allowed now and
    # above the caps after the operator lowers them.
    st.builds(Step, st.just("set_limit"), st.tuples(st.sampled_from(LIMITS), st.integers(1, 20))),
    st.builds(Step, st.just("client_stop")),
    st.builds(Step, st.just("client_pause")),
    st.builds(Step, st.just("client_resume")),
    st.builds(Step, st.just("operator_halt")),
    st.builds(Step, st.just("operator_resume")),
    st.builds(Step, st.just("restart"), st.sampled_from([1, 2, 5, 10, 20, 40])),
)


async def apply(facade: EngineFacade, step: Step, db: Path) -> None:
    try:
        if step.kind == "set_limit":
            name, k = step.arg
            await facade.set_risk_limits({name: k * UNIT[name]}, source="mcp:prop")
        elif step.kind == "client_stop":
            await facade.emergency_stop(flatten=False, source="mcp:prop")
        elif step.kind == "client_pause":
            await facade.pause(source="mcp:prop")
        elif step.kind == "client_resume":
            await facade.resume(source="mcp:prop")
        elif step.kind == "operator_halt":
            write_request(db, OperatorRequest("halt", reason="property"))
            await facade._engine._apply_operator_requests()
        elif step.kind == "operator_resume":
            write_request(db, OperatorRequest("resume"))
            await facade._engine._apply_operator_requests()
    except FacadeError:
        pass  # refused: the invariants below must hold either way


def check(facade: EngineFacade, caps: RiskLimits, operator_halted: bool) -> None:
    engine = facade._engine
    for name in LIMITS:
        assert getattr(engine.risk.limits, name) <= getattr(caps, name), f"{name} above its cap"
    if operator_halted:
        assert engine.risk.state.value == "halted" and engine.risk.halted_by == "operator"


async def scenario(plan: list[Step], db: Path) -> None:
    cap = 20
    operator_halted = False
    while True:
        config = caps_config(cap)
        engine = Engine.from_config(config, db, options=RunOptions(max_events=2, keep_alive=True))
        restart: Step | None = None
        async with engine.serve() as facade:
            with anyio.fail_after(30):
                await engine.done.wait()
            check(facade, config.risk.caps, operator_halted)
            while plan:
                step = plan.pop(0)
                if step.kind == "restart":
                    restart = step
                    break
                await apply(facade, step, db)
                if step.kind == "operator_halt":
                    operator_halted = True
                elif step.kind == "operator_resume":
                    operator_halted = False
                check(facade, config.risk.caps, operator_halted)
        if restart is None:
            return
        cap = restart.arg  # the operator edits the caps (up or down) between runs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps, min_size=1, max_size=10))
def test_no_sequence_lifts_a_limit_above_its_cap_or_the_operators_halt(plan: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        anyio.run(scenario, list(plan), Path(folder) / "p.db")
