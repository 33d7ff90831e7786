"""Restarting a killed state under a configuration with lower ``[risk.caps]``: no new buy may exceed the new cap.

The final state cannot equal the uninterrupted run's here, so the check is different: every buy created after
the restart is valued at its fill price and must stay within ``max_order_notional`` (with a small tolerance: the
engine sizes on a candle's close and fills at the next open). Sells are exempt: they only reduce a long position,
and reducing orders are never blocked by size caps (a position bought before the restart is sold at its size).

Two strategies with different entry sizes keep the check from being vacuous: ``ema_cross`` enters with 400 USD,
below the 500 cap, so a correct engine still buys after the restart; ``mean_reversion`` enters with 1,000 USD,
above it, so an engine that does not apply the new cap shows it. The ``saved-limits`` variant also stores, as an
MCP ``set_risk_limits`` would have before the crash, limits within the default caps (max_order_notional 2,500):
limits restored from the state file must be clamped to the caps in force.
"""

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from recovery.state import StateFile, order_number

__all__ = ["CAP", "SAVED_LIMITS", "TOLERANCE", "VARIANTS", "buys_above_cap", "prepare_restart"]

CAP = Decimal(500)
TOLERANCE = Decimal("0.02")
VARIANTS = ("lowered-caps", "saved-limits")
SAVED_LIMITS = {
    "max_order_qty": "5",
    "max_order_notional": "2500",
    "max_pair_notional": "5000",
    "max_total_notional": "10000",
    "max_open_orders": 20,
}

# Only the notionals are lowered: a tighter max_order_qty would refuse every entry where bitcoin was cheap (in
# 2015 400 USD bought more than one BTC) and leave the cap check nothing to check.
_LIMITS = f"""max_order_qty = "5"
max_order_notional = "{CAP}"
max_pair_notional = "3000"
max_total_notional = "3000"
max_open_orders = 10
"""

CONFIG_TOML = f"""# Written by tests/recovery/caps.py: the operator lowered the caps while the engine was down.
[[strategies]]
name = "ema_cross"
kind = "ema_cross"
pair = "BTC/USD"
order_quote_amount = "400"
params = {{ fast = 12, slow = 26 }}

[[strategies]]
name = "mean_reversion"
kind = "mean_reversion"
pair = "BTC/USD"
order_quote_amount = "1000"
params = {{ period = 20 }}

[risk.limits]
{_LIMITS}
[risk.caps]
{_LIMITS}"""


def prepare_restart(db: Path, variant: str) -> Path:
    """Write the lowered configuration beside ``db`` (and, for ``saved-limits``, the limits an MCP client saved
    earlier into ``db``'s kv table); return the configuration's path.

    Raises:
        ValueError: an unknown variant.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    config = db.with_name("lowered-caps.toml")
    config.write_text(CONFIG_TOML, encoding="utf-8")
    if variant == "saved-limits":
        conn = sqlite3.connect(db)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO kv (key, value) VALUES ('risk_limits', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (json.dumps(SAVED_LIMITS),),
                )
        finally:
            conn.close()
    return config


def buys_above_cap(state: StateFile, after_number: int) -> tuple[int, list[str]]:
    """How many buys numbered after ``after_number`` could be valued, and one reason per buy above the cap."""
    checked, above = 0, []
    limit = CAP * (1 + TOLERANCE)
    for order in state.orders:
        number = order_number(order.client_id)
        if order.side != "buy" or number is None or number <= after_number:
            continue
        if order.filled_qty > 0:
            price = order.filled_cost / order.filled_qty
        elif order.limit_price is not None:
            price = order.limit_price
        else:
            continue  # an unfilled market order has no price to value it at
        checked += 1
        notional = order.qty * price
        if notional > limit:
            above.append(
                f"buy {order.client_id} ({order.strategy}) of {order.qty} at {price:.1f} is {notional:.2f} USD, "
                f"above the new max_order_notional cap {CAP}"
            )
    return checked, above
