"""Signing, body encoding and nonces for Kraken private REST calls."""

import base64
import hashlib
import hmac
import itertools
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.exchanges.kraken import (
    KrakenFatalError,
    NonceSource,
    encode_form,
    encode_json,
    private_request,
    public_request,
    sign,
)

# The official example from docs.kraken.com (spot-rest-auth), hard-coded so it is checked without ../shared.
SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
NONCE = 1616492376594
PATH = "/0/private/AddOrder"
PAYLOAD = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
EXPECTED_SIGN = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def _official_snippet(urlpath: str, data: str, secret: str) -> str:
    """Kraken's documented Python snippet for a string (JSON) body."""
    encoded = (str(json.loads(data)["nonce"]) + data).encode()
    message = urlpath.encode() + hashlib.sha256(encoded).digest()
    mac = hmac.new(base64.b64decode(secret), message, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_official_vector_hard_coded() -> None:
    assert sign(SECRET, PATH, NONCE, PAYLOAD) == EXPECTED_SIGN
    assert sign(SECRET, PATH, str(NONCE), PAYLOAD) == EXPECTED_SIGN


def test_official_vectors_from_shared(shared_dir: Path) -> None:
    path = shared_dir / "kraken" / "vectors.json"
    if not path.is_file():
        pytest.skip("vectors.json absent")
    vectors = json.loads(path.read_text())["rest_api_sign"]
    assert vectors
    for v in vectors:
        assert sign(v["secret_b64"], v["uri_path"], v["nonce"], v["post_data"]) == v["expected_api_sign"]


def test_form_request_reproduces_official_example_end_to_end() -> None:
    params = {
        "ordertype": "limit",
        "pair": "XBTUSD",
        "price": Decimal("37500"),
        "type": "buy",
        "volume": Decimal("1.25"),
    }
    req = private_request("AddOrder", params, "my-key", SECRET, NONCE, json_body=False)
    assert req.method == "POST"
    assert req.path == PATH
    assert req.body == PAYLOAD
    assert req.headers["API-Sign"] == EXPECTED_SIGN
    assert req.headers["API-Key"] == "my-key"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.nonce == NONCE
    assert req.url() == "https://api.kraken.com/0/private/AddOrder"


def test_json_request_signs_the_exact_body_sent() -> None:
    params = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": Decimal("37500.0"),
        "volume": Decimal("1.25"),
    }
    req = private_request("AddOrder", params, "k", SECRET, NONCE)
    assert req.headers["Content-Type"] == "application/json"
    assert req.body.startswith('{"nonce":1616492376594,')
    assert " " not in req.body
    assert json.loads(req.body)["price"] == "37500.0"
    assert req.headers["API-Sign"] == _official_snippet(PATH, req.body, SECRET)


def test_nonce_must_not_be_in_params() -> None:
    with pytest.raises(ValueError, match="nonce"):
        private_request("Balance", {"nonce": 1}, "k", SECRET, 2)


def test_bad_secret_is_fatal() -> None:
    with pytest.raises(KrakenFatalError):
        sign("not base64!!", PATH, 1, "nonce=1")


def test_public_request_query() -> None:
    req = public_request("OHLC", {"pair": "XBTUSD", "interval": 5, "since": None})
    assert req.method == "GET"
    assert req.url() == "https://api.kraken.com/0/public/OHLC?pair=XBTUSD&interval=5"
    assert req.body == ""
    assert dict(req.headers) == {}
    with pytest.raises(ValueError):
        public_request("../Time")


def test_encoders_render_decimals_plainly_and_refuse_floats() -> None:
    assert encode_form({"volume": Decimal("1E-8"), "price": Decimal("1E+1"), "flag": True}) == (
        "volume=0.00000001&price=10&flag=true"
    )
    assert encode_form({"txid": ["A", "B"]}) == urlencode({"txid": "A,B"})
    assert encode_json({"volume": Decimal("0.00000100"), "n": 3, "x": None}) == '{"volume":"0.00000100","n":3}'
    assert encode_json({"orders": [{"price": Decimal("2.5")}]}) == '{"orders":[{"price":"2.5"}]}'
    with pytest.raises(TypeError):
        encode_form({"volume": 1.25})
    with pytest.raises(TypeError):
        encode_json({"orders": [{"price": 2.5}]})
    with pytest.raises(ValueError):
        encode_json({"price": Decimal("NaN")})


class _Clock:
    def __init__(self, values: list[int]) -> None:
        self._values = iter(values)

    def __call__(self) -> int:
        return next(self._values)


def test_nonce_source_follows_clock_and_survives_repeats_and_steps_back() -> None:
    source = NonceSource(_Clock([100, 200, 200, 150, 300]))
    assert [source.next() for _ in range(5)] == [100, 200, 201, 202, 300]
    assert source.last == 300


def test_nonce_source_floor_and_overflow() -> None:
    source = NonceSource(_Clock([5, 2**64]), floor=1_000)
    assert source.next() == 1_001
    with pytest.raises(OverflowError):
        source.next()


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**62), min_size=1, max_size=200))
def test_nonce_source_strictly_increasing_under_any_clock(values: list[int]) -> None:
    source = NonceSource(_Clock(values))
    nonces = [source.next() for _ in values]
    assert all(b > a for a, b in itertools.pairwise(nonces))
    assert nonces[0] >= 1
    # The clock's value is used whenever it is ahead of the last nonce.
    for clock, nonce in zip(values, nonces, strict=True):
        assert nonce >= clock
