"""Account balances per asset, with the part that open orders hold.

``available = total - held``. Totals move only with fills (and explicit deposits); holds move when orders are
placed, filled or released. Neither may go negative: that raises :class:`InsufficientFunds` and changes nothing.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.money import ZERO
from engine.domain.orders import Fill, OrderSide

__all__ = ["AssetBalance", "BalanceError", "Balances", "InsufficientFunds"]

ERR_INSUFFICIENT_FUNDS = "EOrder:Insufficient funds"


class BalanceError(Exception):
    """Base of balance errors."""


class InsufficientFunds(BalanceError):
    """Not enough available balance; ``str()`` is Kraken's error string."""

    def __init__(self, asset: str, needed: Decimal, available: Decimal) -> None:
        super().__init__(ERR_INSUFFICIENT_FUNDS)
        self.asset = asset
        self.needed = needed
        self.available = available


@dataclass(slots=True)
class AssetBalance:
    total: Decimal = ZERO
    held: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.total - self.held


class Balances:
    """Balances of one account."""

    __slots__ = ("_assets",)

    def __init__(self, initial: Mapping[str, Decimal] | None = None) -> None:
        self._assets: dict[str, AssetBalance] = {}
        for asset, amount in (initial or {}).items():
            self.deposit(asset, amount)

    def get(self, asset: str) -> AssetBalance:
        return self._assets.get(asset) or AssetBalance()

    def total(self, asset: str) -> Decimal:
        entry = self._assets.get(asset)
        return entry.total if entry else ZERO

    def available(self, asset: str) -> Decimal:
        entry = self._assets.get(asset)
        return entry.available if entry else ZERO

    def held(self, asset: str) -> Decimal:
        entry = self._assets.get(asset)
        return entry.held if entry else ZERO

    def assets(self) -> dict[str, AssetBalance]:
        return {asset: AssetBalance(b.total, b.held) for asset, b in self._assets.items()}

    def totals(self) -> Iterator[tuple[str, Decimal]]:
        """(asset, total) pairs without copying (for hot paths that only read)."""
        for asset, entry in self._assets.items():
            yield asset, entry.total

    def _entry(self, asset: str) -> AssetBalance:
        entry = self._assets.get(asset)
        if entry is None:
            entry = self._assets[asset] = AssetBalance()
        return entry

    def deposit(self, asset: str, amount: Decimal) -> None:
        if amount < 0:
            raise BalanceError(f"deposit of {amount} {asset} must not be negative")
        self._entry(asset).total += amount

    def set_total(self, asset: str, amount: Decimal) -> None:
        """Overwrite a total (reconciliation with the venue). Holds are kept."""
        if amount < 0:
            raise BalanceError(f"balance of {asset} cannot be negative ({amount})")
        self._entry(asset).total = amount

    def hold(self, asset: str, amount: Decimal) -> None:
        """Reserve ``amount`` for an open order.

        Raises:
            InsufficientFunds: less than ``amount`` is available.
        """
        entry = self._entry(asset)
        if amount < 0:
            raise BalanceError(f"hold of {amount} {asset} must not be negative")
        if entry.available < amount:
            raise InsufficientFunds(asset, amount, entry.available)
        entry.held += amount

    def release(self, asset: str, amount: Decimal) -> None:
        """Give back (part of) a hold; never more than is held."""
        entry = self._entry(asset)
        entry.held -= min(amount, entry.held)

    def apply_fill(self, fill: Fill, base: str, quote: str) -> None:
        """Move totals for a spot fill: the fee is paid in ``fill.fee_asset``.

        Raises:
            InsufficientFunds: the account cannot pay for the fill (nothing is changed then).
        """
        cost = fill.qty * fill.price
        deltas = {quote: -cost, base: fill.qty} if fill.side is OrderSide.BUY else {base: -fill.qty, quote: cost}
        deltas[fill.fee_asset] = deltas.get(fill.fee_asset, ZERO) - fill.fee
        for asset, delta in deltas.items():
            if delta < 0 and self.total(asset) + delta < 0:
                raise InsufficientFunds(asset, -delta, self.total(asset))
        for asset, delta in deltas.items():
            self._entry(asset).total += delta
