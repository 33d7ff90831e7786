"""Emergency-stop tokens: bound to the client that asked and to every argument, per-client, rate-limited, audited."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from fakes.mcp_harness import ok, text_of
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from engine.runtime.facade import EngineFacade
from trading_mcp.confirm import ConfirmationStore
from trading_mcp.errors import Redactor
from trading_mcp.http import serve_http
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio

DESK = Implementation(name="desk", version="1")
BEARER = "confirmation-test-token-0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def ask_for_token(client: Client, **arguments: Any) -> str:
    first = ok(await client.call_tool("emergency_stop", arguments))
    assert first["status"] == "confirmation_required"
    token = first["confirmation_token"]
    assert isinstance(token, str)
    return token


async def test_a_token_is_redeemable_only_by_the_client_it_was_issued_to(facade: EngineFacade, mode: str) -> None:
    server = build_server(facade)
    with anyio.fail_after(30):
        async with Client(server, mode=mode) as alice, Client(server, mode=mode) as mallory:
            token = await ask_for_token(alice)
            stolen = await mallory.call_tool("emergency_stop", {"confirmation_token": token})
            assert stolen.is_error and "unknown" in text_of(stolen) and "Nothing was done" in text_of(stolen)
            assert (await facade.status()).trading_state == "active"
            stopped = ok(await alice.call_tool("emergency_stop", {"confirmation_token": token}))
    assert stopped["status"] == "stopped" and (await facade.status()).trading_state == "halted"


async def test_a_token_is_bound_to_the_reason_as_well_as_flatten(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        token = await ask_for_token(client, reason="drill")
        other_reason = await client.call_tool("emergency_stop", {"reason": "other", "confirmation_token": token})
        token = await ask_for_token(client, reason="drill")
        no_reason = await client.call_tool("emergency_stop", {"confirmation_token": token})
        token = await ask_for_token(client, reason="drill", flatten=False)
        same = ok(await client.call_tool("emergency_stop", {"reason": "drill", "confirmation_token": token}))
    for refused in (other_reason, no_reason):
        assert refused.is_error and "different arguments" in text_of(refused)
    assert same["status"] == "stopped"
    (stop,) = await facade.events(kind="emergency_stop")
    assert stop.payload["args"] == {"flatten": False, "reason": "drill"}


async def test_one_client_asking_for_many_tokens_evicts_only_its_own(facade: EngineFacade, mode: str) -> None:
    server = build_server(facade, confirmations=ConfirmationStore(max_pending=3))
    with anyio.fail_after(30):
        async with Client(server, mode=mode) as alice, Client(server, mode=mode) as flooder:
            kept = await ask_for_token(alice)
            oldest = await ask_for_token(flooder)
            for _ in range(20):
                await ask_for_token(flooder)
            evicted = await flooder.call_tool("emergency_stop", {"confirmation_token": oldest})
            stopped = ok(await alice.call_tool("emergency_stop", {"confirmation_token": kept}))
    assert evicted.is_error and "unknown" in text_of(evicted)
    assert stopped["status"] == "stopped"


async def test_failed_redemptions_lock_the_client_out_for_a_while(facade: EngineFacade, mode: str) -> None:
    clock = FakeClock()
    store = ConfirmationStore(ttl_s=600, clock=clock, max_failures=5, failure_window_s=60, lockout_s=60)
    server = build_server(facade, confirmations=store)
    with anyio.fail_after(30):
        async with Client(server, mode=mode) as guesser, Client(server, mode=mode) as bystander:
            token = await ask_for_token(guesser)
            guesses = [
                await guesser.call_tool("emergency_stop", {"confirmation_token": f"guess-{n}"}) for n in range(5)
            ]
            locked = await guesser.call_tool("emergency_stop", {"confirmation_token": token})
            assert (await facade.status()).trading_state == "active"
            unaffected = await bystander.call_tool("emergency_stop", {"confirmation_token": "typo"})
            clock.now += 60
            stopped = ok(await guesser.call_tool("emergency_stop", {"confirmation_token": token}))
    assert all(g.is_error for g in guesses) and "must wait 60 s" in text_of(guesses[-1])
    assert locked.is_error
    assert text_of(locked) == (
        "Confirmation refused: too many failed confirmation attempts from this client (5 within 60 s); "
        "try again in 60 s. Nothing was done."
    )
    assert unaffected.is_error and "too many" not in text_of(unaffected)
    assert stopped["status"] == "stopped"
    refusals = await facade.events(kind="tool_refused")
    assert len(refusals) == 7 and all("guess" not in str(r.payload) for r in refusals)


async def test_issuing_a_token_is_recorded_without_the_token(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode, client_info=DESK) as client:
        token = await ask_for_token(client, flatten=True, reason="drill")
    (issued,) = await facade.events(kind="confirmation_issued")
    assert issued.source == "mcp:desk"
    assert issued.payload["tool"] == "emergency_stop"
    assert issued.payload["arguments"] == {"flatten": True, "reason": "drill"}
    assert issued.payload["mode"] == "paper" and issued.payload["expires_in_s"] is not None
    every_event = await facade.events(limit=500)
    assert every_event and all(token not in str(e.payload) for e in every_event)


async def test_a_secret_in_a_reason_is_masked_before_the_engine_records_it(facade: EngineFacade, mode: str) -> None:
    secret = "sk-live-0123456789abcdef"
    async with Client(build_server(facade, redactor=Redactor([secret])), mode=mode) as client:
        ok(await client.call_tool("pause_trading", {"reason": f"rotated {secret} today"}))
        token = await ask_for_token(client, reason=f"leaked {secret}")
        ok(await client.call_tool("emergency_stop", {"reason": f"leaked {secret}", "confirmation_token": token}))
    events = await facade.events(limit=500)
    assert events and all(secret not in str(e.payload) for e in events)
    (pause,) = await facade.events(kind="pause_trading")
    assert pause.payload["args"] == {"reason": "rotated [redacted] today"}


@asynccontextmanager
async def http_endpoint(facade: EngineFacade) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(20):
            url: str = await tg.start(
                lambda task_status: serve_http(facade, "127.0.0.1", 0, BEARER, task_status=task_status)
            )
        yield url
        tg.cancel_scope.cancel()


@asynccontextmanager
async def http_client(url: str, mode: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {BEARER}"}) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


async def test_over_http_each_session_is_its_own_client(facade: EngineFacade) -> None:
    async with http_endpoint(facade) as url:
        with anyio.fail_after(30):
            async with http_client(url, "legacy") as alice, http_client(url, "legacy") as mallory:
                token = await ask_for_token(alice)
                stolen = await mallory.call_tool("emergency_stop", {"confirmation_token": token})
                assert (await facade.status()).trading_state == "active"
                stopped = ok(await alice.call_tool("emergency_stop", {"confirmation_token": token}))
    assert stolen.is_error and "unknown" in text_of(stolen)
    assert stopped["status"] == "stopped"


async def test_over_sessionless_http_the_bearer_token_is_the_client(facade: EngineFacade) -> None:
    """2026-07-28 has no session: every request is on its own, so the token must survive across requests, and
    two clients holding the same bearer token are one client (documented in ``identity.py``)."""
    async with http_endpoint(facade) as url:
        with anyio.fail_after(30):
            async with http_client(url, "auto") as first, http_client(url, "auto") as second:
                token = await ask_for_token(first)
                stopped = ok(await second.call_tool("emergency_stop", {"confirmation_token": token}))
                legacy_token = await ask_for_token(first)
            async with http_client(url, "legacy") as with_session:
                other_client = await with_session.call_tool("emergency_stop", {"confirmation_token": legacy_token})
    assert stopped["status"] == "stopped"
    assert other_client.is_error and "unknown" in text_of(other_client)
