"""The profit reserve: a share of each winning round trip's net profit set aside, which trading never spends.

``[risk] reserve_profit_pct`` = p moves ``net × p / 100`` of every round trip that closes with a net profit
(``pnl_value``: net of fees, in the account currency) into the reserve; losses never take from it. The reserve
is an amount of the account currency held back from what buys may spend: the risk checks see the quote balance
less the reserve (converted at the marks for a pair quoted in another asset), so an entry that would need any of
it is refused for insufficient funds. Exits are unaffected (they sell the base asset and bring quote in).

It is a function of the round trips, so it is saved only when an engine starts and stops, in the state file's kv
as ``{"amount", "counted", "share_pct"}`` (the round trips already accounted, and the share in force while the
run that saved it went on). A restart, even after a crash, first accounts the trips closed since at that saved
share (they closed under it), then goes on at the configured one: changing the share never rewrites what was set
aside, and nothing is written per trade.
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
    def restore(cls, share_pct: Decimal, saved: Any, trips: Sequence[ClosedTrade]) -> "ProfitReserve":
        """From the kv value and the restored round trips (a fresh reserve when nothing valid was saved: every
        trip in the history is then accounted at ``share_pct``)."""
        if isinstance(saved, dict):
            try:
                amount, counted = Decimal(str(saved["amount"])), int(saved["counted"])
                then = Decimal(str(saved.get("share_pct", share_pct)))
            except (KeyError, ValueError, ArithmeticError):
                amount, counted, then = _ZERO, -1, share_pct
            if amount.is_finite() and amount >= 0 and 0 <= counted <= len(trips) and 0 <= then <= _HUNDRED:
                before = cls(then, amount, counted)
                before.catch_up(trips)  # the trips closed since the save, at the share in force when they closed
                return cls(share_pct, before.amount, before.counted)
        fresh = cls(share_pct)
        fresh.catch_up(trips)
        return fresh

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
        return {"amount": format(self.amount, "f"), "counted": self.counted, "share_pct": format(self.share_pct, "f")}
