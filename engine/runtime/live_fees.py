"""A live account's own fee rates, read from Kraken's private TradeVolume endpoint at start-up.

AssetPairs no longer carries fee tiers (engine/domain/fee_schedule.py), and what an account pays depends on its
own 30-day volume: a live run asks TradeVolume for the traded pairs and charges its risk checks' estimates at
those rates (the fills themselves carry the fee Kraken charged). When Kraken does not answer, the published
schedule's first tier (the highest fees) stands in, and the run says so in one line.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from engine.domain.fee_schedule import FeeTier
from engine.domain.instrument import Instrument
from engine.exchanges.kraken.protocol.errors import KrakenError
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.port import ExchangeError
from engine.redaction import Redactor

__all__ = ["account_fees"]


async def account_fees(
    rest: KrakenRestClient, instruments: Mapping[str, Instrument], pairs: Sequence[str]
) -> tuple[dict[str, Instrument], str]:
    """``instruments`` with the traded ``pairs`` charging the account's current rates, and a line saying so."""
    known = [instruments[p] for p in pairs if p in instruments]
    try:
        volume = await rest.trade_volume([i.rest_pair for i in known])
    except (KrakenError, ExchangeError, OSError) as exc:
        reason = Redactor().foreign(str(exc))
        return dict(instruments), f"fees: the published schedule's first tier (TradeVolume failed: {reason})"
    updated = dict(instruments)
    shown = []
    for inst in known:
        taker = _fee_of(volume.fees, inst)
        maker = _fee_of(volume.fees_maker, inst)
        if taker is None or maker is None:
            continue
        updated[inst.pair] = replace(
            inst, fees_taker=(FeeTier(Decimal(0), taker),), fees_maker=(FeeTier(Decimal(0), maker),)
        )
        shown.append(f"{inst.pair} {taker}% taker / {maker}% maker")
    rates = "; ".join(shown) if shown else "no pair's rates in the answer: the published schedule stands in"
    return updated, f"fees: {rates} (Kraken TradeVolume, 30-day volume {volume.volume} USD)"


def _fee_of(table: Mapping[str, Decimal], inst: Instrument) -> Decimal | None:
    for name in (inst.rest_name, inst.altname, inst.pair):
        if name in table:
            return table[name]
    return None
