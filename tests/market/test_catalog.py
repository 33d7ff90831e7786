"""The catalogue: every spelling of a pair resolves to one instrument; the kept copy overlays the shipped file."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.fee_schedule import PUBLISHED_MAKER, PUBLISHED_TAKER, FeeTier
from engine.domain.instrument import Instrument
from engine.market.catalog import Catalog, UnknownPair, catalog_from_asset_pairs, shipped_catalog
from engine.market.catalog_files import canonical_pair_name, current_catalog, load_kept, save_kept

DATA = Path(__file__).resolve().parents[2] / "engine" / "data"

# Written out by hand from Kraken's documentation and the issue, not derived from the code under test.
SPELLINGS = {
    "BTC/USD": ["BTC/USD", "XBT/USD", "XBTUSD", "BTCUSD", "XXBTZUSD", "btc-usd", "btc_usd", " xbt/usd ", "Btc:Usd"],
    "ETH/USD": ["ETH/USD", "ETHUSD", "XETHZUSD", "eth-usd"],
    "DOGE/USD": ["DOGE/USD", "XDGUSD", "XDG/USD", "DOGEUSD", "doge-usd"],
    "ETH/BTC": ["ETH/BTC", "ETHXBT", "XETHXXBT", "ETH/XBT", "eth-btc", "ETHBTC"],
    "BTC/USDT": ["BTC/USDT", "XBTUSDT", "XBT/USDT", "btc-usdt"],
    "SOL/USD": ["SOL/USD", "SOLUSD", "sol-usd"],
    "0G/EUR": ["0G/EUR", "0GEUR", "0g-eur"],
}


def test_every_listed_spelling_names_its_pair() -> None:
    catalog = shipped_catalog()
    for canonical, spellings in SPELLINGS.items():
        for spelling in spellings:
            assert catalog.resolve(spelling).pair == canonical, spelling


def spelling_of(inst: Instrument) -> st.SearchStrategy[str]:
    """Any of Kraken's names of ``inst`` or a human one: aliases of base and quote, any separator, any case."""
    base_aliases = {"BTC": ["BTC", "XBT", "XXBT"], "DOGE": ["DOGE", "XDG", "XXDG"], "ETH": ["ETH", "XETH"]}
    quote_aliases = {"USD": ["USD", "ZUSD"], "EUR": ["EUR", "ZEUR"], "BTC": ["BTC", "XBT", "XXBT"]}
    bases = base_aliases.get(inst.base, [inst.base])
    quotes = quote_aliases.get(inst.quote, [inst.quote])
    joined = st.builds(
        lambda b, q, sep, upper: (f"{b}{sep}{q}").upper() if upper else (f"{b}{sep}{q}").lower(),
        st.sampled_from(bases),
        st.sampled_from(quotes),
        st.sampled_from(["/", "-", "_", ":", " "]),
        st.booleans(),
    )
    kraken = st.sampled_from([inst.pair, inst.rest_name, inst.altname, inst.wsname, inst.ws_symbol])
    return st.one_of(joined, kraken)


@given(
    st.sampled_from(sorted(shipped_catalog().names())).flatmap(
        lambda n: st.tuples(st.just(n), spelling_of(shipped_catalog().resolve(n)))
    )
)
def test_any_spelling_of_a_shipped_pair_resolves_to_it_and_only_it(case: tuple[str, str]) -> None:
    canonical, spelling = case
    assert shipped_catalog().resolve(spelling).pair == canonical
    assert canonical_pair_name(spelling) == canonical


def test_unknown_and_empty_names_are_refused_in_one_line_with_a_way_forward() -> None:
    catalog = shipped_catalog()
    with pytest.raises(UnknownPair) as info:
        catalog.resolve("XBTUSDX")
    message = str(info.value)
    assert "\n" not in message and "trading-mcp pairs --refresh" in message and "BTC/USD" in message  # a hint
    with pytest.raises(UnknownPair, match="a pair name is needed"):
        catalog.resolve("  ")


def test_a_run_together_name_two_pairs_answer_to_is_ambiguous_but_the_slashed_ones_resolve() -> None:
    def entry(base: str, quote: str) -> dict[str, object]:
        return {"altname": base + quote, "base": base, "quote": quote, "pair_decimals": 2, "lot_decimals": 8}

    catalog = catalog_from_asset_pairs({"ABCDUSD": entry("ABCD", "USD"), "ABCDUSDX": entry("ABC", "DUSD")}, "t")
    assert catalog.resolve("ABCD/USD").pair == "ABCD/USD" and catalog.resolve("ABC/DUSD").pair == "ABC/DUSD"
    with pytest.raises(UnknownPair, match="ambiguous"):
        Catalog(
            [
                Instrument.from_kraken("P1", entry("ABCD", "USD") | {"altname": ""}),
                Instrument.from_kraken("P2", entry("ABC", "DUSD") | {"altname": ""}),
            ],
            "t",
        ).resolve("ABCDUSD")


def test_the_published_schedule_is_the_one_asset_pairs_carried_in_2025() -> None:
    """The shipped XBTUSDT capture (2025-11-11) still had fee arrays; the 2026 entries are empty."""
    capture = json.loads((DATA / "kraken_asset_pairs_xbtusdt.json").read_text())["result"]["XBTUSDT"]
    assert tuple(FeeTier(Decimal(str(v)), Decimal(str(p))) for v, p in capture["fees"]) == PUBLISHED_TAKER
    assert tuple(FeeTier(Decimal(str(v)), Decimal(str(p))) for v, p in capture["fees_maker"]) == PUBLISHED_MAKER
    btc = shipped_catalog().resolve("BTC/USD")  # a 2026 entry with empty arrays
    assert btc.fee_rate(maker=False) == Decimal("0.004") and btc.fee_rate(maker=True) == Decimal("0.0025")
    assert btc.fee_rate(maker=False, volume_30d=Decimal(60000)) == Decimal("0.0024")


def test_the_kept_copy_overlays_the_shipped_pairs_and_a_broken_one_is_left_alone(tmp_path: Path) -> None:
    shipped_btc = shipped_catalog().resolve("BTC/USD")
    entry = json.loads((DATA / "instruments.json").read_text())["XXBTZUSD"] | {"ordermin": "0.0002"}
    new = {"altname": "PEPEUSD", "wsname": "PEPE/USD", "base": "PEPE", "quote": "ZUSD", "pair_decimals": 9,
           "lot_decimals": 2, "ordermin": "1000000", "costmin": "0.5", "status": "online"}  # fmt: skip
    path = save_kept({"XXBTZUSD": entry, "PEPEUSD": new}, {}, 1_764_000_000_000_000_000)
    try:
        catalog = current_catalog()
        assert catalog.resolve("xbtusd").ordermin == Decimal("0.0002") != shipped_btc.ordermin  # newer wins
        assert catalog.resolve("pepe-usd").pair == "PEPE/USD" and "ETH/USD" in catalog  # shipped ones stay
        assert "Kraken AssetPairs of 2025-11-24" in catalog.source
        assert load_kept(path) is not None
        path.write_text('{"asset_pairs": {"X": {"base": "A"}}, "fetched_ns": 1}')  # malformed entry
        assert current_catalog().resolve("xbtusd") == shipped_btc  # the shipped catalogue stands in
    finally:
        path.unlink()
    assert current_catalog() is shipped_catalog()


def test_a_name_no_catalogue_knows_is_split_where_it_can_be() -> None:
    from engine.market.inferred import split_unknown

    assert split_unknown("FOOUSDT") == ("FOO", "USDT") and split_unknown("pepeusd") == ("PEPE", "USD")
    assert split_unknown("foo-xbt") == ("FOO", "BTC") and split_unknown("FOOXBT") == ("FOO", "BTC")
    assert split_unknown("FOOBARBAZ") is None and split_unknown("USD") is None
    assert canonical_pair_name("pepeusd") == "PEPE/USD" and canonical_pair_name("foobarbaz") == "FOOBARBAZ"
