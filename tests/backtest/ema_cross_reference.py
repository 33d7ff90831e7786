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
* Position guards (optional, :class:`Guards`; read from engine/risk/position_guards.py's docstring), checked at
  each candle's close while a position is held, before the cross: stop-loss when the low is at or below
  ``entry * (1 - sl/100)``; trailing stop when the low is at or below ``peak * (1 - trail/100)``, the peak being
  the highest high of the earlier candles held (the entry price at first); take-profit when the high is at or
  above ``entry * (1 + tp/100)``, selling ``share`` of the position once (rounded down to the lot; all of it when
  the part or the rest would be below the order minimum); time stop once the position has seen N candles. A stop
  beats the take-profit on the same candle. A whole exit that triggered is asked for at every later candle until
  the position is flat. A guard's exit replaces the cross on that candle (the EMAs still move).
"""

import csv
import json
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from pathlib import Path

__all__ = ["Candle", "Guards", "PairRules", "RefFill", "Result", "read_candles", "run_reference"]

PROTECTION = Decimal("0.05")
FEE_RESERVE_QUANTA = 4


@dataclass(frozen=True)
class Candle:
    time: int  # the candle's open time, unix seconds
    open: Decimal
    close: Decimal
    high: Decimal = Decimal(0)
    low: Decimal = Decimal(0)


@dataclass(frozen=True)
class Guards:
    """Position guards in percent (0 = off) and candles (0 = off)."""

    stop_loss: Decimal = Decimal(0)
    take_profit: Decimal = Decimal(0)
    share: Decimal = Decimal(1)
    trailing: Decimal = Decimal(0)
    time_stop: int = 0


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
    triggers: list[tuple[int, str]] = field(default_factory=list)  # (time, guard) of each guard that triggered
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
            return [
                Candle(int(row[0]), Decimal(row[1]), Decimal(row[4]), Decimal(row[2]), Decimal(row[3]))
                for row in csv.reader(f)
                if row
            ]
    result = json.loads(path.read_text())["result"]
    last = result["last"]
    (rows,) = [v for k, v in result.items() if k != "last"]
    return [
        Candle(int(r[0]), Decimal(r[1]), Decimal(r[4]), Decimal(r[2]), Decimal(r[3])) for r in rows if int(r[0]) <= last
    ]


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
    guards: Guards | None = None,
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
    entry = peak = Decimal(0)
    candles_held = 0
    scaled = False
    latched = ""

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
                if side == "buy":
                    entry = peak = price
        out.last_close = close = candle.close
        # 1b. The guards, on this candle's high and low.
        exit_qty = Decimal(0)
        if guards is not None and held > 0:
            hit, share = "", Decimal(1)
            if latched:
                hit = latched
            else:
                if guards.stop_loss and candle.low <= entry * (1 - guards.stop_loss / 100):
                    hit = "stop_loss_pct"
                elif guards.trailing and candle.low <= peak * (1 - guards.trailing / 100):
                    hit = "trailing_stop_pct"
                elif guards.take_profit and not scaled and candle.high >= entry * (1 + guards.take_profit / 100):
                    hit, share, scaled = "take_profit_pct", guards.share, True
            peak = max(peak, candle.high)
            candles_held += 1
            if not hit and guards.time_stop and candles_held >= guards.time_stop:
                hit = "time_stop_candles"
            if hit:
                if not latched:
                    out.triggers.append((candle.time, hit))
                if share == 1:
                    latched = hit
                exit_qty = held
                if share < 1:
                    part = (held * share).quantize(lot, rounding=ROUND_DOWN)
                    if part >= rules.ordermin and held - part >= rules.ordermin:
                        exit_qty = part
                if exit_qty < rules.ordermin or exit_qty * _round_to_tick(close, rules.tick) < rules.costmin:
                    out.refused.append((candle.time, "sell", exit_qty, "kraken minimum"))
                else:
                    pending = ("sell", exit_qty, Decimal(0))
        elif held == 0:
            candles_held, scaled, latched = 0, False, ""
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
        if exit_qty:
            continue  # the guard's exit was sent above
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
