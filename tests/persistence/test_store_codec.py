"""Exact encodings: Decimal <-> TEXT and JSON without floats."""

from decimal import Decimal
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.persistence import CodecError
from engine.persistence.codec import dec_from_text, dec_to_text, from_json, to_json


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("1E+30"), "1000000000000000000000000000000"),
        (Decimal("123456789012345678901234567890.123456789012345678"), None),
        (Decimal("-0.5"), "-0.5"),
        (Decimal("1.50"), "1.50"),
        (Decimal(0), "0"),
    ],
)
def test_decimal_text_round_trip_is_exact(value: Decimal, text: str | None) -> None:
    encoded = dec_to_text(value)
    assert "E" not in encoded and "e" not in encoded
    if text is not None:
        assert encoded == text
    assert dec_from_text(encoded) == value


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_finite_decimal_round_trips(value: Decimal) -> None:
    assert dec_from_text(dec_to_text(value)) == value


@pytest.mark.parametrize("bad", [0.1, True, Decimal("NaN"), Decimal("Infinity"), "1.0", None])
def test_decimal_encoder_refuses_inexact_values(bad: object) -> None:
    with pytest.raises(CodecError):
        dec_to_text(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.5, "abc", None])
def test_decimal_decoder_refuses_non_decimal_text(bad: object) -> None:
    with pytest.raises(CodecError):
        dec_from_text(bad)


class _Colour(StrEnum):
    RED = "red"


def test_json_writes_decimals_as_strings_sets_sorted_and_enums_as_values() -> None:
    text = to_json({"a": Decimal("0.00000001"), "s": {"b", "a"}, "e": _Colour.RED, "n": [1, None, True]})
    assert from_json(text) == {"a": "0.00000001", "s": ["a", "b"], "e": "red", "n": [1, None, True]}


@pytest.mark.parametrize("bad", [{"x": 0.5}, {"x": [1, {"y": 2.0}]}, {1: "int key"}, {"x": object()}])
def test_json_refuses_floats_and_unknown_types(bad: object) -> None:
    with pytest.raises(CodecError):
        to_json(bad)


def test_json_reads_a_stray_float_as_decimal() -> None:
    assert from_json('{"x": 0.1}') == {"x": Decimal("0.1")}
