"""The fake Kraken's exchange: pairs, balances, books, orders, fills and candles, and its simple matching rules.

Rules (the fake's, kept simple and deterministic): market orders and the marketable part of limit orders take
the book level by level (taker); the rest of a limit order rests. A resting order fills as maker, at its limit
price, when the test moves the market through it: a new book whose opposite side reaches the limit
(:meth:`FakeMarket.set_book`) or a public trade at or through the limit (:meth:`FakeMarket.public_trade`).
Fees are the first tier of the pair's schedule, rounded up to ``cost_decimals``, charged in the quote asset.
A good-till-date order (time in force ``GTD`` with an expiry) is expired when the fake's clock has reached its
expiry: checked before anything else happens in the market and by :meth:`FakeMarket.expire_due` (tests move the
clock, never sleep), reported as Kraken does (``exec_type``/``order_status`` ``expired``, dated at the expiry).

Everything that happens is reported through ``notify(kind, payload)`` so the WebSocket side can publish it:
``executions`` (report dicts), ``ledger`` (balance ledger dicts), ``book`` / ``ticker`` (pair altname),
``trade`` (altname, public trade dicts), ``ohlc`` (altname, interval, candle dict).
"""

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from typing import Any

__all__ = ["ENGINE_CODE", "FakeMarket", "FakeOrder", "FakePair", "FakeTrade", "PlaceResult", "ids_of", "rfc3339"]

ZERO = Decimal(0)
KRAKEN_CODE = {"BTC": "XXBT", "USD": "ZUSD", "ETH": "XETH", "EUR": "ZEUR", "USDT": "USDT"}
ENGINE_CODE = {**{v: k for k, v in KRAKEN_CODE.items()}, "XBT": "BTC"}
Notify = Callable[[str, Any], None]


def rfc3339(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def seconds(ns: int) -> Decimal:
    return Decimal(ns).scaleb(-9).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class FakePair:
    rest_name: str
    altname: str
    ws_symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal
    tick: Decimal
    taker_pct: Decimal
    maker_pct: Decimal
    info: Mapping[str, Any]

    @classmethod
    def from_asset_pairs(cls, rest_name: str, info: Mapping[str, Any]) -> "FakePair":
        base = ENGINE_CODE.get(str(info["base"]), str(info["base"]))
        quote = ENGINE_CODE.get(str(info["quote"]), str(info["quote"]))
        fees = info.get("fees") or [[0, "0.4"]]
        fees_maker = info.get("fees_maker") or [[0, "0.25"]]
        return cls(
            rest_name=rest_name,
            altname=str(info["altname"]),
            ws_symbol=f"{base}/{quote}",
            base=base,
            quote=quote,
            price_precision=int(info["pair_decimals"]),
            qty_precision=int(info["lot_decimals"]),
            cost_decimals=int(info["cost_decimals"]),
            ordermin=Decimal(str(info["ordermin"])),
            costmin=Decimal(str(info.get("costmin", "0"))),
            tick=Decimal(str(info.get("tick_size", "0.1"))),
            taker_pct=Decimal(str(fees[0][1])),
            maker_pct=Decimal(str(fees_maker[0][1])),
            info=info,
        )


@dataclass
class FakeOrder:
    txid: str
    pair: FakePair
    side: str
    ordertype: str
    vol: Decimal
    price: Decimal | None
    cl_ord_id: str | None
    userref: int | None
    opentm_ns: int
    status: str = "open"
    vol_exec: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    trades: list[str] = field(default_factory=list)
    closetm_ns: int | None = None
    reason: str | None = None
    post_only: bool = False
    expire_ns: int | None = None
    time_in_force: str = "GTC"

    @property
    def remaining(self) -> Decimal:
        return self.vol - self.vol_exec

    @property
    def descr(self) -> str:
        where = "market" if self.price is None else f"limit {self.price}"
        return f"{self.side} {self.vol} {self.pair.altname} @ {where}"


def ids_of(order: FakeOrder) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if order.cl_ord_id is not None:
        out["cl_ord_id"] = order.cl_ord_id
    if order.userref is not None:
        out["order_userref"] = order.userref
    return out


@dataclass(frozen=True)
class FakeTrade:
    txid: str
    ordertxid: str
    pair: FakePair
    time_ns: int
    side: str
    ordertype: str
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    maker: bool
    trade_id: int


@dataclass(frozen=True)
class PlaceResult:
    order: FakeOrder | None = None
    error: str | None = None
    descr: str = ""


def _ids(prefix: str) -> Iterable[str]:
    for n in itertools.count(1):
        text = f"{n:011d}"
        yield f"{prefix}{text[:5]}-{text[5:10]}-FAKE{text[10:]}{prefix}"


class FakeMarket:
    """One account on one fake venue."""

    def __init__(self, pairs: Iterable[FakePair], balances: Mapping[str, Decimal], clock_ns: Callable[[], int]):
        self.pairs = {p.altname: p for p in pairs}
        self.by_symbol = {p.ws_symbol: p for p in self.pairs.values()}
        self.by_rest = {p.rest_name: p for p in self.pairs.values()}
        self.balances: dict[str, Decimal] = {k: Decimal(v) for k, v in balances.items()}
        self.clock_ns = clock_ns
        self.notify: Notify = lambda kind, payload: None
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {
            name: ({}, {}) for name in self.pairs
        }
        self.orders: dict[str, FakeOrder] = {}
        self.trades: dict[str, FakeTrade] = {}
        self.public_trades: dict[str, list[dict[str, Any]]] = {name: [] for name in self.pairs}
        self.last_price: dict[str, Decimal] = {}
        self.candles: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._order_ids = iter(_ids("O"))
        self._trade_ids = iter(_ids("T"))
        self._public_trade_id = itertools.count(1000)
        self._ledger_ids = iter(_ids("L"))

    # -- lookups --------------------------------------------------------------------------------------------

    def pair(self, name: str) -> FakePair | None:
        """By altname, REST key or WS symbol."""
        return self.pairs.get(name) or self.by_rest.get(name) or self.by_symbol.get(name)

    def open_orders(self) -> list[FakeOrder]:
        return [o for o in self.orders.values() if o.status == "open"]

    def find(self, *, txid: str | None = None, cl_ord_id: str | None = None) -> FakeOrder | None:
        if txid is not None:
            return self.orders.get(txid)
        matches = [o for o in self.orders.values() if o.cl_ord_id == cl_ord_id]
        return matches[-1] if matches else None

    def levels(self, altname: str, side: str, depth: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """``side`` "bids" (best = highest first) or "asks" (best = lowest first)."""
        bids, asks = self.books[altname]
        book = bids if side == "bids" else asks
        prices = sorted(book, reverse=side == "bids")[:depth]
        return [(p, book[p]) for p in prices]

    def held(self, asset: str) -> Decimal:
        total = ZERO
        for order in self.open_orders():
            pair = order.pair
            if order.side == "buy" and pair.quote == asset and order.price is not None:
                total += order.remaining * order.price * (1 + pair.taker_pct / 100)
            elif order.side == "sell" and pair.base == asset:
                total += order.remaining
        return total

    def available(self, asset: str) -> Decimal:
        return self.balances.get(asset, ZERO) - self.held(asset)

    # -- orders ---------------------------------------------------------------------------------------------

    def _estimate_cost(self, pair: FakePair, side: str, vol: Decimal) -> Decimal | None:
        left, cost = vol, ZERO
        for price, qty in self.levels(pair.altname, "asks" if side == "buy" else "bids"):
            take = min(left, qty)
            cost += take * price
            left -= take
            if left <= 0:
                return cost
        return None

    def check(
        self, pair: FakePair | None, side: str, ordertype: str, vol: Decimal, price: Decimal | None
    ) -> str | None:
        if pair is None:
            return "EQuery:Unknown asset pair"
        if side not in ("buy", "sell"):
            return "EGeneral:Invalid arguments:type"
        if ordertype not in ("market", "limit") or (ordertype == "limit") != (price is not None):
            return "EGeneral:Invalid arguments:ordertype"
        if vol <= 0 or vol != vol.quantize(Decimal(1).scaleb(-pair.qty_precision)):
            return "EGeneral:Invalid arguments:volume"
        if vol < pair.ordermin:
            return "EOrder:Order minimum not met"
        if price is not None and (price <= 0 or price % pair.tick != 0):
            return "EOrder:Tick size check failed"
        cost = vol * price if price is not None else self._estimate_cost(pair, side, vol)
        if cost is None:
            return "EOrder:Insufficient liquidity"
        if cost < pair.costmin:
            return "EOrder:Cost minimum not met"
        if side == "buy":
            if self.available(pair.quote) < cost * (1 + pair.taker_pct / 100):
                return "EOrder:Insufficient funds"
        elif self.available(pair.base) < vol:
            return "EOrder:Insufficient funds"
        return None

    def place(
        self,
        *,
        pair_name: str,
        side: str,
        ordertype: str,
        vol: Decimal,
        price: Decimal | None,
        cl_ord_id: str | None = None,
        userref: int | None = None,
        post_only: bool = False,
        validate: bool = False,
        time_in_force: str = "GTC",
        expire_ns: int | None = None,
    ) -> PlaceResult:
        """Place an order; ``time_in_force`` is GTC or GTD (upper case), GTD with ``expire_ns`` in the future."""
        self.expire_due()
        pair = self.pair(pair_name)
        error = self.check(pair, side, ordertype, vol, price)
        if error is None:
            error = self._check_expiry(time_in_force, expire_ns)
        if error is not None or pair is None:
            return PlaceResult(error=error)
        order = FakeOrder(next(self._order_ids), pair, side, ordertype, vol, price, cl_ord_id, userref, self.clock_ns())
        order.post_only = post_only
        order.time_in_force, order.expire_ns = time_in_force, expire_ns
        if validate:
            return PlaceResult(descr=order.descr)
        self.orders[order.txid] = order
        base = self._report(order, "pending_new", "pending_new")
        base.update(symbol=pair.ws_symbol, side=side, order_type=ordertype, order_qty=vol, time_in_force=time_in_force)
        if price is not None:
            base["limit_price"] = price
        self.notify("executions", [base, self._report(order, "new", "new")])
        if post_only and self._crosses(order):
            self.cancel(order, "Post only order")
        else:
            self._take(order)
        return PlaceResult(order=order, descr=order.descr)

    def _check_expiry(self, time_in_force: str, expire_ns: int | None) -> str | None:
        # Kraken: "GTD (good-'til-date), if specified, must coincide with a desired expiretm". The error strings
        # are the fake's own (Kraken documents none for these).
        if time_in_force not in ("GTC", "GTD"):
            return "EGeneral:Invalid arguments:timeinforce"
        if (time_in_force == "GTD") != (expire_ns is not None):
            return "EGeneral:Invalid arguments:expiretm"
        if expire_ns is not None and expire_ns <= self.clock_ns():
            return "EGeneral:Invalid arguments:expiretm"
        return None

    def expire_due(self) -> int:
        """Expire the open good-till-date orders whose expiry the clock has reached; returns how many."""
        now = self.clock_ns()
        due = [o for o in self.open_orders() if o.expire_ns is not None and o.expire_ns <= now]
        for order in sorted(due, key=lambda o: (o.expire_ns or 0, o.opentm_ns)):
            self.expire(order)
        return len(due)

    def _crosses(self, order: FakeOrder) -> bool:
        side = "asks" if order.side == "buy" else "bids"
        best = self.levels(order.pair.altname, side, 1)
        if not best or order.price is None:
            return bool(best)
        return best[0][0] <= order.price if order.side == "buy" else best[0][0] >= order.price

    def _take(self, order: FakeOrder) -> None:
        pair = order.pair
        bids, asks = self.books[pair.altname]
        book = asks if order.side == "buy" else bids
        touched = False
        while order.remaining > 0:
            best = self.levels(pair.altname, "asks" if order.side == "buy" else "bids", 1)
            if not best:
                break
            price, qty = best[0]
            if order.price is not None and (price > order.price if order.side == "buy" else price < order.price):
                break
            take = min(qty, order.remaining)
            self._fill(order, price, take, maker=False)
            touched = True
            if take == qty:
                del book[price]
            else:
                book[price] = qty - take
        if order.ordertype == "market" and order.status == "open":
            self._close(order, "closed" if order.vol_exec else "canceled", "Insufficient liquidity")
        if touched:
            self.notify("book", pair.altname)
            self.notify("ticker", pair.altname)

    def _fill(self, order: FakeOrder, price: Decimal, qty: Decimal, *, maker: bool) -> FakeTrade:
        pair = order.pair
        now = self.clock_ns()
        cost = qty * price
        pct = pair.maker_pct if maker else pair.taker_pct
        fee = (cost * pct / 100).quantize(Decimal(1).scaleb(-pair.cost_decimals), rounding=ROUND_UP)
        sign = 1 if order.side == "buy" else -1
        deltas = {pair.base: sign * qty, pair.quote: -sign * cost - fee}
        for asset, delta in deltas.items():
            self.balances[asset] = self.balances.get(asset, ZERO) + delta
        order.vol_exec += qty
        order.cost += cost
        order.fee += fee
        trade = FakeTrade(
            next(self._trade_ids),
            order.txid,
            pair,
            now,
            order.side,
            order.ordertype,
            price,
            qty,
            cost,
            fee,
            maker,
            next(self._public_trade_id),
        )
        self.trades[trade.txid] = trade
        order.trades.append(trade.txid)
        if order.remaining == 0:
            order.status = "closed"
            order.closetm_ns = now
        report = self._report(order, "trade", "filled" if order.remaining == 0 else "partially_filled")
        report.update(
            exec_id=trade.txid,
            trade_id=trade.trade_id,
            symbol=pair.ws_symbol,
            side=order.side,
            last_qty=qty,
            last_price=price,
            liquidity_ind="m" if maker else "t",
            cost=cost,
            cum_qty=order.vol_exec,
            cum_cost=order.cost,
            avg_price=order.cost / order.vol_exec,
            fees=[{"asset": pair.quote, "qty": fee}],
            fee_usd_equiv=fee,
            order_type=order.ordertype,
        )
        self.notify("executions", [report])
        self.notify("ledger", [self._ledger(trade, asset, delta) for asset, delta in deltas.items()])
        taker_side = order.side if not maker else ("sell" if order.side == "buy" else "buy")
        self._public(pair, price, qty, taker_side, "market" if order.ordertype == "market" else "limit", now)
        return trade

    def _ledger(self, trade: FakeTrade, asset: str, delta: Decimal) -> dict[str, Any]:
        fee = trade.fee if asset == trade.pair.quote else ZERO
        return {
            "ledger_id": next(self._ledger_ids),
            "ref_id": trade.txid,
            "timestamp": rfc3339(trade.time_ns),
            "type": "trade",
            "asset": asset,
            "asset_class": "currency",
            "category": "trade",
            "wallet_type": "spot",
            "wallet_id": "main",
            "amount": delta + fee,
            "fee": fee,
            "balance": self.balances[asset],
        }

    def _report(self, order: FakeOrder, exec_type: str, status: str, ts_ns: int | None = None) -> dict[str, Any]:
        report: dict[str, Any] = {
            "order_id": order.txid,
            "exec_type": exec_type,
            "order_status": status,
            "timestamp": rfc3339(self.clock_ns() if ts_ns is None else ts_ns),
        }
        if order.cl_ord_id is not None:
            report["cl_ord_id"] = order.cl_ord_id
        if order.userref is not None:
            report["order_userref"] = order.userref
        return report

    def _close(self, order: FakeOrder, status: str, reason: str) -> None:
        order.status = status
        order.reason = reason
        order.closetm_ns = self.clock_ns()
        if status == "canceled":
            report = self._report(order, "canceled", "canceled")
            report.update(cum_qty=order.vol_exec, reason=reason)
            self.notify("executions", [report])

    def cancel(self, order: FakeOrder, reason: str = "User requested") -> None:
        self._close(order, "canceled", reason)

    def cancel_all(self, reason: str = "User requested") -> int:
        orders = self.open_orders()
        for order in orders:
            self.cancel(order, reason)
        return len(orders)

    def expire(self, order: FakeOrder) -> None:
        """Close ``order`` as expired, at its expiry when it has one (else now); its hold is released."""
        order.status = "expired"
        order.closetm_ns = order.expire_ns if order.expire_ns is not None else self.clock_ns()
        report = self._report(order, "expired", "expired", order.closetm_ns)
        report.update(cum_qty=order.vol_exec, cum_cost=order.cost)
        self.notify("executions", [report])

    def amend(self, order: FakeOrder, qty: Decimal | None, price: Decimal | None) -> str | None:
        if self.expire_due() and order.status != "open":
            return "EOrder:Unknown order"
        if qty is not None:
            if qty <= order.vol_exec:
                return "EOrder:Invalid order"
            order.vol = qty
        if price is not None:
            order.price = price
        report = self._report(order, "amended", "partially_filled" if order.vol_exec else "new")
        report.update(order_qty=order.vol, limit_price=order.price)
        self.notify("executions", [report])
        self._take(order)
        return None

    # -- the market (driven by tests) ----------------------------------------------------------------------

    def set_book(
        self,
        altname: str,
        bids: Iterable[tuple[Decimal | str, Decimal | str]],
        asks: Iterable[tuple[Decimal | str, Decimal | str]],
    ) -> None:
        """Replace the book; resting orders it reaches fill as makers (consuming those levels)."""
        self.expire_due()
        self.books[altname] = (
            {Decimal(p): Decimal(q) for p, q in bids},
            {Decimal(p): Decimal(q) for p, q in asks},
        )
        for order in sorted(self.open_orders(), key=lambda o: o.opentm_ns):
            if order.pair.altname != altname or order.price is None:
                continue
            self._make(order)
        self.notify("book", altname)
        self.notify("ticker", altname)

    def _make(self, order: FakeOrder) -> None:
        bids, asks = self.books[order.pair.altname]
        book = asks if order.side == "buy" else bids
        assert order.price is not None
        while order.remaining > 0:
            best = self.levels(order.pair.altname, "asks" if order.side == "buy" else "bids", 1)
            if not best:
                return
            price, qty = best[0]
            if price > order.price if order.side == "buy" else price < order.price:
                return
            take = min(qty, order.remaining)
            self._fill(order, order.price, take, maker=True)
            if take == qty:
                del book[price]
            else:
                book[price] = qty - take

    def _public(self, pair: FakePair, price: Decimal, qty: Decimal, side: str, ord_type: str, ts: int) -> None:
        trade = {
            "symbol": pair.ws_symbol,
            "side": side,
            "price": price,
            "qty": qty,
            "ord_type": ord_type,
            "trade_id": next(self._public_trade_id),
            "timestamp": rfc3339(ts),
            "ts_ns": ts,
        }
        self.public_trades[pair.altname].append(trade)
        self.last_price[pair.altname] = price
        self.notify("trade", (pair.altname, [trade]))

    def public_trade(
        self, altname: str, price: Decimal, qty: Decimal, side: str = "buy", ts_ns: int | None = None
    ) -> None:
        """Someone else traded: publish it; resting orders at or through ``price`` fill as makers."""
        self.expire_due()
        pair = self.pairs[altname]
        self._public(pair, price, qty, side, "limit", ts_ns if ts_ns is not None else self.clock_ns())
        budget = qty
        for order in sorted(self.open_orders(), key=lambda o: o.opentm_ns):
            if order.pair.altname != altname or order.price is None or budget <= 0:
                continue
            if price <= order.price if order.side == "buy" else price >= order.price:
                take = min(budget, order.remaining)
                self._fill(order, order.price, take, maker=True)
                budget -= take
        self.notify("ticker", altname)

    def ohlc(self, altname: str, interval: int, candle: Mapping[str, Any]) -> None:
        """Set the current candle and publish it; a new ``begin_ns`` starts the next candle.

        ``candle`` holds ``begin_ns`` (int), ``open``, ``high``, ``low``, ``close``, ``vwap``, ``volume``
        (Decimal) and ``trades`` (int).
        """
        history = self.candles.setdefault((altname, interval), [])
        row = dict(candle)
        if history and history[-1]["begin_ns"] == row["begin_ns"]:
            history[-1] = row
        else:
            history.append(row)
        self.notify("ohlc", (altname, interval, row))
