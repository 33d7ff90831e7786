"""Tradable instruments and Kraken's precision rules.

An :class:`Instrument` carries what Kraken's AssetPairs says about a pair: price and lot precision, the order and
cost minimums, the tick size and the maker/taker fee schedules. It is the one place that quantises prices and
quantities and that knows which order Kraken would refuse on precision or minimum grounds.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from engine.domain.fee_schedule import PUBLISHED_MAKER, PUBLISHED_TAKER, FeeTier
from engine.domain.money import ZERO, parse_decimal, quantum

__all__ = [
    "ERR_COST_MIN",
    "ERR_INVALID_PRICE",
    "ERR_ORDER_MIN",
    "ERR_TICK_SIZE",
    "FeeTier",
    "Instrument",
    "InstrumentError",
    "legacy_asset_codes",
    "normalize_asset",
]

ERR_ORDER_MIN = "EOrder:Order minimum not met"
ERR_COST_MIN = "EOrder:Cost minimum not met"
ERR_TICK_SIZE = "EOrder:Tick size check failed"
ERR_INVALID_PRICE = "EOrder:Invalid price"
ERR_INVALID_VOLUME = "EGeneral:Invalid arguments:volume"
_ONE = Decimal(1)

# Kraken's legacy asset codes (REST) mapped to the plain codes WebSocket v2 and the engine use.
_ASSET_ALIASES = {
    "XXBT": "BTC",
    "XBT": "BTC",
    "XBT.M": "BTC",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZCAD": "CAD",
    "ZJPY": "JPY",
    "XETH": "ETH",
    "XLTC": "LTC",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XXDG": "DOGE",
    "XDG": "DOGE",
    "XZEC": "ZEC",
    "XXMR": "XMR",
    "XETC": "ETC",
    "ZAUD": "AUD",
    "ZCHF": "CHF",
    "XMLN": "MLN",
    "XREP": "REP",
}


def normalize_asset(code: str) -> str:
    """Map a Kraken asset code (``XXBT``, ``ZUSD``, ``USDT``) to the engine's code (``BTC``, ``USD``, ``USDT``)."""
    return _ASSET_ALIASES.get(code, code)


def legacy_asset_codes() -> dict[str, str]:
    """Kraken's legacy asset codes (REST ids such as ``XXBT``, altnames such as ``XDG``) → the plain codes."""
    return dict(_ASSET_ALIASES)


class InstrumentError(ValueError):
    """An instrument description is malformed."""


def _default_taker() -> tuple[FeeTier, ...]:
    return PUBLISHED_TAKER


def _default_maker() -> tuple[FeeTier, ...]:
    return PUBLISHED_MAKER


@dataclass(frozen=True, slots=True)
class Instrument:
    """A spot pair with Kraken's precision rules.

    Attributes:
        pair: the engine's pair name, the canonical one: Kraken's WebSocket v2 symbol (``BTC/USD``; see
            :mod:`engine.market.pair_names`).
        ws_symbol: the WebSocket v2 symbol (``BTC/USD``; the same as ``pair`` for every pair read from Kraken).
        rest_name: the key Kraken's REST API uses (``XXBTZUSD``).
        altname, wsname: Kraken's other names of the pair (``XBTUSD``, ``XBT/USD``), accepted as input.
        base, quote: engine asset codes (``BTC``, ``USD``).
        pair_decimals: price precision; lot_decimals: quantity precision; cost_decimals: cost precision.
        ordermin: the smallest base quantity; costmin: the smallest cost in quote; tick_size: the price step.
    """

    pair: str
    ws_symbol: str
    rest_name: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal
    tick_size: Decimal
    fees_taker: tuple[FeeTier, ...] = field(default_factory=_default_taker)
    fees_maker: tuple[FeeTier, ...] = field(default_factory=_default_maker)
    status: str = "online"
    altname: str = ""  # Kraken's altname (XBTUSD), and its WebSocket v1 name (XBT/USD): spellings users meet
    wsname: str = ""
    # Derived once (every order reads them): the steps, and the (taker, maker) rates of the lowest fee tier.
    price_step: Decimal = field(init=False, repr=False, compare=False)
    lot_step: Decimal = field(init=False, repr=False, compare=False)
    _base_rates: tuple[Decimal, Decimal] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The price increment is the tick size, or one unit of the last price decimal.
        object.__setattr__(self, "price_step", self.tick_size if self.tick_size > 0 else quantum(self.pair_decimals))
        object.__setattr__(self, "lot_step", quantum(self.lot_decimals))
        rates = (_rate(self.fees_taker, ZERO), _rate(self.fees_maker, ZERO))
        object.__setattr__(self, "_base_rates", rates)

    @property
    def rest_pair(self) -> str:
        """The name Kraken's REST API takes in a ``pair`` parameter: the altname (``XBTUSD``), else the REST key."""
        return self.altname or self.rest_name

    def round_price(self, price: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """Round ``price`` to a multiple of the tick size, carried at ``pair_decimals`` places."""
        step = self.price_step
        ticks = (price / step).quantize(_ONE, rounding=rounding)
        return (ticks * step).quantize(quantum(self.pair_decimals))

    def round_qty_down(self, qty: Decimal) -> Decimal:
        """Round ``qty`` down to the lot precision (never buy or sell more than asked)."""
        return qty.quantize(self.lot_step, rounding=ROUND_DOWN)

    def round_cost(self, cost: Decimal) -> Decimal:
        return cost.quantize(quantum(self.cost_decimals), rounding=ROUND_HALF_EVEN)

    def fee_rate(self, *, maker: bool, volume_30d: Decimal = ZERO) -> Decimal:
        """The fee as a fraction of cost (0.0040 for 0.40 %) for the tier that ``volume_30d`` reaches."""
        if not volume_30d:
            return self._base_rates[maker]
        return _rate(self.fees_maker if maker else self.fees_taker, volume_30d)

    def check_order(self, qty: Decimal, price: Decimal | None) -> str | None:
        """The Kraken error string this order would be rejected with on precision or minimums, else None.

        ``price`` is the limit price, or for a market order the reference price used for the cost check
        (None skips the price checks).
        """
        if qty <= 0 or qty != qty.quantize(self.lot_step, rounding=ROUND_DOWN):
            return ERR_INVALID_VOLUME
        if qty < self.ordermin:
            return ERR_ORDER_MIN
        if price is None:
            return None
        if price <= 0:
            return ERR_INVALID_PRICE
        if price % self.price_step != 0:
            return ERR_TICK_SIZE
        if qty * price < self.costmin:
            return ERR_COST_MIN
        return None

    @classmethod
    def from_kraken(cls, rest_name: str, info: Mapping[str, Any], ws_symbol: str | None = None) -> "Instrument":
        """Build from one entry of Kraken's ``/0/public/AssetPairs`` result.

        Raises:
            InstrumentError: when a required field is missing or malformed.
        """
        try:
            base = normalize_asset(str(info["base"]))
            quote = normalize_asset(str(info["quote"]))
            pair_decimals = int(info["pair_decimals"])
            tick_raw = info.get("tick_size")
            tick = parse_decimal(str(tick_raw), field="tick_size") if tick_raw is not None else quantum(pair_decimals)
            symbol = ws_symbol or f"{base}/{quote}"
            return cls(
                pair=symbol,
                ws_symbol=symbol,
                rest_name=rest_name,
                base=base,
                quote=quote,
                pair_decimals=pair_decimals,
                lot_decimals=int(info["lot_decimals"]),
                cost_decimals=int(info.get("cost_decimals", pair_decimals)),
                ordermin=parse_decimal(str(info.get("ordermin", "0")), field="ordermin"),
                costmin=parse_decimal(str(info.get("costmin", "0")), field="costmin"),
                tick_size=tick,
                fees_taker=_tiers(info.get("fees")) or _default_taker(),
                fees_maker=_tiers(info.get("fees_maker")) or _default_maker(),
                status=str(info.get("status", "online")),
                altname=str(info.get("altname", "")),
                wsname=str(info.get("wsname", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InstrumentError(f"AssetPairs entry {rest_name!r} is malformed: {exc}") from exc


def _rate(schedule: tuple[FeeTier, ...], volume_30d: Decimal) -> Decimal:
    """The fee fraction of the highest tier of ``schedule`` that ``volume_30d`` reaches (the first one below all)."""
    percent = schedule[0].percent
    for tier in schedule:
        if volume_30d >= tier.volume:
            percent = tier.percent
    return percent / Decimal(100)


def _tiers(raw: object) -> tuple[FeeTier, ...]:
    if not isinstance(raw, Sequence):
        return ()
    # Fee tiers arrive as JSON numbers; str() of the parsed value keeps the digits Kraken sent.
    return tuple(
        FeeTier(parse_decimal(str(volume), field="fee volume"), parse_decimal(str(percent), field="fee percent"))
        for volume, percent in raw
    )
