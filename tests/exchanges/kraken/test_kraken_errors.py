"""Classification of Kraken error strings and envelope handling."""

from decimal import Decimal

import pytest

from engine.exchanges.kraken import (
    KrakenError,
    KrakenFatalError,
    KrakenProtocolError,
    KrakenRetryableError,
    KrakenUserError,
    classify,
    envelope_warnings,
    raise_for_envelope,
)


@pytest.mark.parametrize(
    ("text", "cls", "rate_limited"),
    [
        ("EAPI:Rate limit exceeded", KrakenRetryableError, True),
        ("EOrder:Rate limit exceeded", KrakenRetryableError, True),
        ("EService: Throttled: 1688671659", KrakenRetryableError, True),
        ("EGeneral:Temporary lockout", KrakenRetryableError, True),
        ("EService:Unavailable", KrakenRetryableError, False),
        ("EService:Busy", KrakenRetryableError, False),
        ("EGeneral:Internal error", KrakenRetryableError, False),
        ("EAPI:Invalid nonce", KrakenRetryableError, False),
        ("EOrder:Insufficient funds", KrakenUserError, False),
        ("EOrder:Order minimum not met", KrakenUserError, False),
        ("EOrder:Cost minimum not met", KrakenUserError, False),
        ("EOrder:Tick size check failed", KrakenUserError, False),
        ("EGeneral:Invalid arguments:ordertype", KrakenUserError, False),
        ("EOrder:Invalid price", KrakenUserError, False),
        ("EQuery:Unknown asset pair", KrakenUserError, False),
        ("EOrder:Unknown order", KrakenUserError, False),
        ("EOrder:Orders limit exceeded", KrakenUserError, False),
        ("EService:Market in cancel_only mode", KrakenUserError, False),
        ("EService:Market in post_only mode", KrakenUserError, False),
        ("Currency pair not supported XBT/USD", KrakenUserError, False),
        ("EAPI:Invalid key", KrakenFatalError, False),
        ("EAPI:Invalid signature", KrakenFatalError, False),
        ("EGeneral:Permission denied", KrakenFatalError, False),
        ("EAuth:Account temporary disabled", KrakenFatalError, False),
        ("EAccount:Invalid permissions", KrakenFatalError, False),
    ],
)
def test_classify(text: str, cls: type[KrakenError], rate_limited: bool) -> None:
    error = classify([text])
    assert type(error) is cls
    assert error.errors == (text,)
    assert error.rate_limited is rate_limited
    assert text in str(error)


def test_most_severe_wins_and_warnings_are_ignored() -> None:
    assert type(classify(["EAPI:Rate limit exceeded", "EOrder:Insufficient funds"])) is KrakenUserError
    assert type(classify(["EOrder:Insufficient funds", "EAPI:Invalid key"])) is KrakenFatalError
    error = classify(["WGeneral:Something", "EService:Unavailable"])
    assert type(error) is KrakenRetryableError
    assert error.errors == ("EService:Unavailable",)
    with pytest.raises(ValueError):
        classify(["WGeneral:Only a warning"])


def test_flags() -> None:
    assert classify(["EAPI:Invalid nonce"]).invalid_nonce
    assert not classify(["EAPI:Rate limit exceeded"]).invalid_nonce
    assert classify(["EService: Throttled: 1688671659"]).throttled_until == 1688671659
    assert classify(["EService:Throttled"]).throttled_until is None


def test_raise_for_envelope() -> None:
    assert raise_for_envelope({"error": [], "result": {"count": 1}}) == {"count": 1}
    payload = {"error": ["WGeneral:Deprecated"], "result": {"x": Decimal("1.5")}}
    assert raise_for_envelope(payload) == {"x": Decimal("1.5")}
    assert envelope_warnings(payload) == ["WGeneral:Deprecated"]
    with pytest.raises(KrakenUserError, match="ordertype"):
        raise_for_envelope({"error": ["EGeneral:Invalid arguments:ordertype"]})
    with pytest.raises(KrakenRetryableError):
        raise_for_envelope({"error": ["EAPI:Rate limit exceeded"], "result": {}})


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"error": []},
        {"error": "EAPI:Invalid key"},
        {"error": [], "result": [1]},
        {"error": [1], "result": {}},
    ],
)
def test_raise_for_envelope_malformed(payload: object) -> None:
    with pytest.raises(KrakenProtocolError):
        raise_for_envelope(payload)
