"""The profit reserve: a share of each winning round trip's net profit set aside, which trading never spends.

``[risk] reserve_profit_pct`` = p moves ``net × p / 100`` of every round trip that closes with a net profit
(``pnl_value``: net of fees, in the account currency) into the reserve; losses never take from it. The reserve
is an amount of the account currency held back from what buys may spend: the risk checks see the quote balance
less the reserve (converted at the marks for a pair quoted in another asset), so an entry that would need any of
it is refused for insufficient funds. Exits are unaffected (they sell the base asset and bring quote in).

It is saved in the state file's kv as ``{"amount", "counted"}`` (the round trips already accounted), so a restart
goes on from where it was and accounts only the trips closed since, at the share in force then. Changing the
share never rewrites what was set aside.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.portfolio.performance import ClosedTrade

__all__ = ["RESERVE_KV", "ProfitReserve"]

RESERVE_KV = "profit_reserve"
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


@dataclass(slots=True)
class ProfitReserve:
    share_pct: Decimal
    amount: Decimal = _ZERO
    counted: int = 0

    @classmethod
    def restore(cls, share_pct: Decimal, saved: Any) -> "ProfitReserve":
        """From the kv value (or a fresh one when there is none or it is not what was saved)."""
        if isinstance(saved, dict):
            try:
                amount, counted = Decimal(str(saved["amount"])), int(saved["counted"])
            except (KeyError, ValueError, ArithmeticError):
                return cls(share_pct)
            if amount.is_finite() and amount >= 0 and counted >= 0:
                return cls(share_pct, amount, counted)
        return cls(share_pct)

    def catch_up(self, trips: Sequence[ClosedTrade]) -> bool:
        """Account the round trips closed since the last call; whether the amount changed."""
        if len(trips) <= self.counted:
            return False
        changed = False
        if self.share_pct > 0:
            for trip in trips[self.counted :]:
                net = trip.pnl_value
                if net is not None and net > 0:
                    self.amount += net * self.share_pct / _HUNDRED
                    changed = True
        self.counted = len(trips)
        return changed

    def saved(self) -> dict[str, str | int]:
        return {"amount": format(self.amount, "f"), "counted": self.counted}
