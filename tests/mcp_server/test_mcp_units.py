"""Pure parts of the MCP layer: confirmation tokens, the notification throttle, redaction, input checks."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from trading_mcp.confirm import ConfirmationStore
from trading_mcp.errors import ConfirmationRefused, InvalidInput, Redactor, UnknownName
from trading_mcp.models import ScalarValue, engine_values, resolve_name
from trading_mcp.notify import LegacySubscribers, Throttle
from trading_mcp.source import source_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_confirms_once() -> None:
    store = ConfirmationStore(clock=Clock())
    issued = store.issue("stop", {"flatten": False})
    store.redeem(issued.token, "stop", {"flatten": False})
    with pytest.raises(ConfirmationRefused, match="already used"):
        store.redeem(issued.token, "stop", {"flatten": False})


def test_token_expires_at_its_ttl() -> None:
    clock = Clock()
    store = ConfirmationStore(ttl_s=10, clock=clock)
    issued = store.issue("stop", {})
    clock.now = 10
    with pytest.raises(ConfirmationRefused, match="expired"):
        store.redeem(issued.token, "stop", {})


def test_token_is_bound_to_action_and_arguments_and_consumed_by_a_mismatch() -> None:
    store = ConfirmationStore(clock=Clock())
    issued = store.issue("stop", {"flatten": False})
    with pytest.raises(ConfirmationRefused, match="different arguments"):
        store.redeem(issued.token, "stop", {"flatten": True})
    with pytest.raises(ConfirmationRefused, match="already used"):
        store.redeem(issued.token, "stop", {"flatten": False})


def test_unknown_tokens_are_refused_and_pending_tokens_are_capped() -> None:
    counter = iter(range(100))
    store = ConfirmationStore(clock=Clock(), new_token=lambda: f"t{next(counter)}", max_pending=3)
    for _ in range(5):
        store.issue("stop", {})
    assert store.pending() == 3
    with pytest.raises(ConfirmationRefused):
        store.redeem("t0", "stop", {})
    store.redeem("t4", "stop", {})


def test_tokens_are_unguessable_by_default() -> None:
    store = ConfirmationStore()
    tokens = {store.issue("stop", {}).token for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 20 for t in tokens)


def test_throttle_sends_first_change_at_once_and_coalesces_the_rest() -> None:
    throttle = Throttle(0.5)
    throttle.offer(["bot://balance"])
    assert throttle.take_due(10.0) == ["bot://balance"]
    throttle.offer(["bot://balance"])
    throttle.offer(["bot://balance", "bot://orders"])
    assert throttle.take_due(10.1) == ["bot://orders"]
    assert throttle.next_due() == pytest.approx(10.5)
    assert throttle.take_due(10.4) == []
    assert throttle.take_due(10.5) == ["bot://balance"]
    assert throttle.next_due() is None


def test_throttle_zero_interval_passes_everything() -> None:
    throttle = Throttle(0)
    throttle.offer(["a", "b"])
    assert throttle.take_due(1.0) == ["a", "b"]
    throttle.offer(["a"])
    assert throttle.take_due(1.0) == ["a"]


def test_legacy_subscribers_count_a_connection_once_and_are_capped() -> None:
    subscribers = LegacySubscribers()
    params = object()
    first, again = SimpleNamespace(client_params=params), SimpleNamespace(client_params=params)
    subscribers.add("bot://orders", first)
    subscribers.add("bot://orders", again)
    assert len(subscribers.sessions_for("bot://orders")) == 1
    for _ in range(100):
        subscribers.add("bot://orders", SimpleNamespace(client_params=object()))
    assert len(subscribers.sessions_for("bot://orders")) == 64
    subscribers.remove("bot://balance", first)
    assert subscribers.uris() == ["bot://orders"]


def test_redactor_masks_known_secrets_and_secret_looking_keys() -> None:
    redactor = Redactor(["kraken-key-123456", ""])
    redactor.add("bearer-abcdef")
    payload = {
        "note": "used kraken-key-123456 and bearer-abcdef",
        "confirmation_token": "xyz",
        "nested": [{"api_key": "k"}, {"fine": 1.5}],
        "empty_token": "",
    }
    cleaned = redactor.payload(payload)
    assert cleaned == {
        "note": "used [redacted] and [redacted]",
        "confirmation_token": "[redacted]",
        "nested": [{"api_key": "[redacted]"}, {"fine": 1.5}],
        "empty_token": "",
    }


def test_redactor_reads_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKEN_API_SECRET", "s3cr3t-value")
    assert Redactor().text("x s3cr3t-value y") == "x [redacted] y"


def test_engine_values_turn_floats_and_decimal_text_into_exact_decimals() -> None:
    assert engine_values({"a": 0.1, "b": 3, "c": "2.5", "d": True, "e": "-7"}, what="parameters") == {
        "a": Decimal("0.1"),
        "b": 3,
        "c": Decimal("2.5"),
        "d": True,
        "e": Decimal("-7"),
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "no parameters"),
        ({"a": float("inf")}, "finite"),
        ({"a b": 1}, "not a valid name"),
        ({"a": "9" * 65}, "long"),
        ({"a": " 5 "}, "not a plain decimal"),
        ({"a": "\u0665"}, "not a plain decimal"),
        ({"a": "1_000"}, "not a plain decimal"),
        ({"a": "1e3"}, "not a plain decimal"),
    ],
)
def test_engine_values_refuse_bad_input(values: dict[str, ScalarValue], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        engine_values(values, what="parameters")


def test_resolve_name_ignores_case_and_separators() -> None:
    assert resolve_name("xbt/usd", ["ETHUSD", "XBTUSD"], what="pair") == "XBTUSD"
    with pytest.raises(UnknownName, match="known: ETHUSD, XBTUSD"):
        resolve_name("DOGE", ["ETHUSD", "XBTUSD"], what="pair")


def test_source_names_the_client_safely() -> None:
    def session(name: object) -> SimpleNamespace:
        return SimpleNamespace(client_params=SimpleNamespace(client_info=SimpleNamespace(name=name)))

    assert source_of(session("Claude Desktop")) == "mcp:Claude Desktop"
    assert source_of(session("evil\n\x1b[31mname" + "x" * 100)) == "mcp:evil31mname" + "x" * 53
    assert source_of(SimpleNamespace(client_params=None)) == "mcp:unknown"
    assert source_of(session("\n")) == "mcp:unknown"
