"""A deliberately plain, independent reimplementation of the engine's EMA-cross backtest, for the cross-check.

Nothing here imports the engine: the rules are written out again from what the engine documents, in plain
loops over Decimals, so that a defect in the engine shows up as a difference instead of being shared.

The rules (read from engine/strategies/ema_cross.py, engine/market/indicators.py, engine/runtime/trader.py,
engine/risk/checks.py and engine/exchanges/paper/):

* Signals, at each candle's close: EMA(p) is seeded with the simple mean of its first p closes, then
  ``ema = (close - ema) * (2 / (p + 1)) + ema``. Once both EMAs exist, the sign of ``fast - slow`` (+1, 0, -1) is
  compared with the previous candle's: a change to +1 buys when flat, a change to -1 sells the whole position.
* Sizing: a buy spends ``budget`` of the quote: ``qty = budget / close`` rounded down to the lot decimals. A sell
  sells the position.
* Checks before sending: Kraken's order minimum and cost minimum (at the close rounded to the tick); a buy needs
  ``qty * close * (1 + fee)`` of free quote. No size or exposure limit (a backtest's default).
* The simulated venue, on accepting a market buy, holds ``qty * round(close) * 1.05 * (1 + fee)`` plus four cost
  quanta, and refuses it when the quote balance cannot cover that.
* Fills: a market order fills in full at the next candle's open, at that candle's time; a buy whose open is
  above ``round(close) * 1.05`` is cancelled instead (market price protection). The fee is ``qty * price *
  fee``, rounded up to the pair's cost decimals (Kraken rounds fees up), never more than the cost.
"""

import csv
import json
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from pathlib import Path

__all__ = ["Candle", "PairRules", "RefFill", "Result", "read_candles", "run_reference"]

PROTECTION = Decimal("0.05")
FEE_RESERVE_QUANTA = 4


@dataclass(frozen=True)
class Candle:
    time: int  # the candle's open time, unix seconds
    open: Decimal
    close: Decimal


@dataclass(frozen=True)
class PairRules:
    """A pair's Kraken rules, written out by hand in the test (not read from the engine's catalogue)."""

    lot_decimals: int
    cost_decimals: int
    tick: Decimal
    ordermin: Decimal
    costmin: Decimal


@dataclass(frozen=True)
class RefFill:
    time: int
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal


@dataclass
class Result:
    fills: list[RefFill] = field(default_factory=list)
    refused: list[tuple[int, str, Decimal, str]] = field(default_factory=list)  # (time, side, qty, why)
    cancelled: list[tuple[int, Decimal]] = field(default_factory=list)  # (time, qty) of protected buys
    quote: Decimal = Decimal(0)
    base: Decimal = Decimal(0)
    last_close: Decimal = Decimal(0)

    @property
    def equity(self) -> Decimal:
        return self.quote + self.base * self.last_close


def read_candles(path: Path) -> list[Candle]:
    """A Kraken OHLCVT CSV (time, open, high, low, close, volume, trades) or a REST OHLC JSON answer (whose last
    row, after ``result["last"]``, is the still-open candle and is left out)."""
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            return [Candle(int(row[0]), Decimal(row[1]), Decimal(row[4])) for row in csv.reader(f) if row]
    result = json.loads(path.read_text())["result"]
    last = result["last"]
    (rows,) = [v for k, v in result.items() if k != "last"]
    return [Candle(int(r[0]), Decimal(r[1]), Decimal(r[4])) for r in rows if int(r[0]) <= last]


def _round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick


def run_reference(
    candles: list[Candle],
    *,
    fast: int,
    slow: int,
    budget: Decimal,
    fee: Decimal,
    start_quote: Decimal,
    rules: PairRules,
) -> Result:
    lot = Decimal(1).scaleb(-rules.lot_decimals)
    cost_step = Decimal(1).scaleb(-rules.cost_decimals)
    alpha_fast = Decimal(2) / Decimal(fast + 1)
    alpha_slow = Decimal(2) / Decimal(slow + 1)
    out = Result(quote=start_quote)
    held = Decimal(0)
    seen: list[Decimal] = []
    ema_fast: Decimal | None = None
    ema_slow: Decimal | None = None
    prev_sign: int | None = None
    pending: tuple[str, Decimal, Decimal] | None = None  # (side, qty, protection) sent at the last close

    for candle in candles:
        # 1. The order sent at the previous close meets this candle's open.
        if pending is not None:
            side, qty, protection = pending
            pending = None
            price = candle.open
            if side == "buy" and price > protection:
                out.cancelled.append((candle.time, qty))
            else:
                cost = qty * price
                charged = min((cost * fee).quantize(cost_step, rounding=ROUND_UP), cost.quantize(cost_step, ROUND_DOWN))
                if side == "buy":
                    out.quote -= cost + charged
                    held += qty
                else:
                    out.quote += cost - charged
                    held -= qty
                out.fills.append(RefFill(candle.time, side, price, qty, charged))
        out.last_close = close = candle.close
        # 2. The EMAs, seeded with the simple mean of their first values.
        seen.append(close)
        if ema_fast is not None and ema_slow is not None:
            ema_fast = (close - ema_fast) * alpha_fast + ema_fast
            ema_slow = (close - ema_slow) * alpha_slow + ema_slow
        else:
            if ema_fast is None and len(seen) >= fast:
                ema_fast = sum(seen[:fast], Decimal(0)) / Decimal(fast)
            elif ema_fast is not None:
                ema_fast = (close - ema_fast) * alpha_fast + ema_fast
            if len(seen) >= slow:
                ema_slow = sum(seen[:slow], Decimal(0)) / Decimal(slow)
            if ema_fast is None or ema_slow is None:
                continue
        diff = ema_fast - ema_slow
        sign = 1 if diff > 0 else -1 if diff < 0 else 0
        before, prev_sign = prev_sign, sign
        if before is None or before == sign:
            continue
        # 3. A cross: size, check, send.
        if sign > 0 and held == 0:
            qty = (budget / close).quantize(lot, rounding=ROUND_DOWN)
            if qty <= 0:
                continue
            ref = _round_to_tick(close, rules.tick)
            if qty < rules.ordermin:
                out.refused.append((candle.time, "buy", qty, "ordermin"))
            elif qty * ref < rules.costmin:
                out.refused.append((candle.time, "buy", qty, "costmin"))
            elif qty * close * (1 + fee) > out.quote:
                out.refused.append((candle.time, "buy", qty, "funds"))
            elif out.quote < qty * ref * (1 + PROTECTION) * (1 + fee) + FEE_RESERVE_QUANTA * cost_step:
                out.refused.append((candle.time, "buy", qty, "venue: funds"))
            else:
                pending = ("buy", qty, ref * (1 + PROTECTION))
        elif sign < 0 and held > 0:
            qty = held
            if qty < rules.ordermin or qty * _round_to_tick(close, rules.tick) < rules.costmin:
                out.refused.append((candle.time, "sell", qty, "kraken minimum"))
            else:
                pending = ("sell", qty, Decimal(0))
    out.base = held
    return out
