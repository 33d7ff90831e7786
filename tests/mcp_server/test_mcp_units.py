"""Pure parts of the MCP layer: confirmation tokens, the notification throttle, redaction, input checks."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from trading_mcp.confirm import ConfirmationStore
from trading_mcp.errors import ConfirmationRefused, InvalidInput, Redactor, UnknownName
from trading_mcp.models import ScalarValue, engine_values, resolve_name, resolve_pair
from trading_mcp.notify import LegacySubscribers, Throttle
from trading_mcp.source import source_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_confirms_once() -> None:
    store = ConfirmationStore(clock=Clock())
    issued = store.issue("a", "stop", {"flatten": False})
    store.redeem("a", issued.token, "stop", {"flatten": False})
    with pytest.raises(ConfirmationRefused, match="already used"):
        store.redeem("a", issued.token, "stop", {"flatten": False})


def test_token_expires_at_its_ttl() -> None:
    clock = Clock()
    store = ConfirmationStore(ttl_s=10, clock=clock)
    issued = store.issue("a", "stop", {})
    clock.now = 10
    with pytest.raises(ConfirmationRefused, match="expired"):
        store.redeem("a", issued.token, "stop", {})


def test_token_is_bound_to_action_and_every_argument_and_consumed_by_a_mismatch() -> None:
    store = ConfirmationStore(clock=Clock())
    issued = store.issue("a", "stop", {"flatten": False, "reason": "drill"})
    with pytest.raises(ConfirmationRefused, match="different arguments"):
        store.redeem("a", issued.token, "stop", {"flatten": False, "reason": "other"})
    with pytest.raises(ConfirmationRefused, match="already used"):
        store.redeem("a", issued.token, "stop", {"flatten": False, "reason": "drill"})
    other = store.issue("a", "stop", {"flatten": False})
    with pytest.raises(ConfirmationRefused, match="different arguments"):
        store.redeem("a", other.token, "resume", {"flatten": False})


def test_a_token_is_unknown_to_another_client_and_stays_good_for_its_owner() -> None:
    store = ConfirmationStore(clock=Clock())
    issued = store.issue("a", "stop", {})
    with pytest.raises(ConfirmationRefused, match="unknown"):
        store.redeem("b", issued.token, "stop", {})
    assert store.pending("a") == 1
    store.redeem("a", issued.token, "stop", {})


def test_pending_tokens_are_capped_per_client_and_evict_only_the_clients_own() -> None:
    counter = iter(range(100))
    store = ConfirmationStore(clock=Clock(), new_token=lambda: f"t{next(counter)}", max_pending=3)
    theirs = store.issue("b", "stop", {})
    for _ in range(5):
        store.issue("a", "stop", {})
    assert store.pending("a") == 3 and store.pending("b") == 1 and store.pending() == 4
    with pytest.raises(ConfirmationRefused, match="unknown"):
        store.redeem("a", "t1", "stop", {})  # a's oldest was dropped for a's newest
    store.redeem("a", "t5", "stop", {})
    store.redeem("b", theirs.token, "stop", {})


def test_past_max_clients_a_new_client_is_refused_rather_than_anyone_evicted() -> None:
    clock = Clock()
    store = ConfirmationStore(ttl_s=10, clock=clock, max_clients=2)
    first = store.issue("a", "stop", {})
    store.issue("b", "stop", {})
    with pytest.raises(ConfirmationRefused, match="too many clients"):
        store.issue("c", "stop", {})
    store.issue("a", "stop", {})  # a client already holding tokens may still ask
    store.redeem("a", first.token, "stop", {})
    clock.now = 10  # once the others' tokens expire there is room again
    store.issue("c", "stop", {})
    assert store.pending() == 1


def test_failed_redemptions_lock_out_only_that_client_for_a_while() -> None:
    clock = Clock()
    store = ConfirmationStore(ttl_s=600, clock=clock, max_failures=5, failure_window_s=60, lockout_s=60)
    good = store.issue("a", "stop", {})
    theirs = store.issue("b", "stop", {})
    for attempt in range(5):
        clock.now += 1
        with pytest.raises(ConfirmationRefused, match="unknown") as refused:
            store.redeem("a", f"guess-{attempt}", "stop", {})
    assert "must wait 60 s" in str(refused.value)
    with pytest.raises(ConfirmationRefused, match=r"too many failed confirmation attempts .* try again in 60 s"):
        store.redeem("a", good.token, "stop", {})  # not even looked at: the token survives the lockout
    store.redeem("b", theirs.token, "stop", {})  # another client is not affected
    clock.now += 59.5
    with pytest.raises(ConfirmationRefused, match="try again in 1 s"):
        store.redeem("a", good.token, "stop", {})
    clock.now += 0.5
    store.redeem("a", good.token, "stop", {})


def test_failures_outside_the_window_or_before_a_success_do_not_add_up() -> None:
    clock = Clock()
    store = ConfirmationStore(ttl_s=600, clock=clock, max_failures=3, failure_window_s=60)

    def fail() -> str:
        with pytest.raises(ConfirmationRefused) as refused:
            store.redeem("a", "guess", "stop", {})
        return str(refused.value)

    fail(), fail()
    clock.now += 61
    assert "must wait" not in fail()  # the first two fell out of the window
    fail()
    store.redeem("a", store.issue("a", "stop", {}).token, "stop", {})
    assert "must wait" not in fail()  # a success starts the count again
    assert "must wait" not in fail()
    assert "must wait" in fail()


def test_tokens_are_unguessable_by_default() -> None:
    store = ConfirmationStore()
    tokens = {store.issue("a", "stop", {}).token for _ in range(20)}
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
    assert resolve_name("Ema-Cross", ["mean_reversion", "ema_cross"], what="strategy") == "ema_cross"
    with pytest.raises(UnknownName, match="known: mean_reversion, ema_cross"):
        resolve_name("macd", ["mean_reversion", "ema_cross"], what="strategy")


def test_a_pair_is_found_by_any_of_its_spellings() -> None:
    for spelling in ("xbt/usd", "XBTUSD", "btc-usd", "XXBTZUSD", "BTC/USD", "btcusd"):
        assert resolve_pair(spelling, ["ETH/USD", "BTC/USD"]) == "BTC/USD"
    assert resolve_pair("XETHZUSD", ["ETH/USD", "BTC/USD"]) == "ETH/USD"
    with pytest.raises(UnknownName, match="known: ETH/USD, BTC/USD"):
        resolve_pair("DOGE", ["ETH/USD", "BTC/USD"])


def test_source_names_the_client_safely() -> None:
    def session(name: object) -> SimpleNamespace:
        return SimpleNamespace(client_params=SimpleNamespace(client_info=SimpleNamespace(name=name)))

    assert source_of(session("Claude Desktop")) == "mcp:Claude Desktop"
    assert source_of(session("evil\n\x1b[31mname" + "x" * 100)) == "mcp:evil31mname" + "x" * 53
    assert source_of(SimpleNamespace(client_params=None)) == "mcp:unknown"
    assert source_of(session("\n")) == "mcp:unknown"
