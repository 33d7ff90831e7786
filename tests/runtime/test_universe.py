"""A scanner-chosen universe: only allowlisted pairs, only the chosen ones open positions, every change logged,
and a restart decides as an uninterrupted run."""

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import ConfigError, config_from_mapping

pytestmark = pytest.mark.anyio
HOUR = 3600
START = 1_700_000_000 // HOUR * HOUR


def write_pair(path: Path, seed: int, price: float, drift: float, noise: float, volume: float) -> None:
    """Hourly Kraken OHLCVT rows: a random walk with ``drift`` and ``noise`` (relative), 2 price decimals."""
    rng = random.Random(seed)
    rows = []
    close = price
    for hour in range(400):
        # Regimes: the drift flips every 100 hours, so that the ranking changes over the run.
        sign = 1 if (hour // 100) % 2 == 0 else -1
        open_ = close
        close = max(0.01, open_ * (1 + sign * drift + rng.gauss(0, noise)))
        high, low = max(open_, close) * (1 + noise / 2), min(open_, close) * (1 - noise / 2)
        vol = volume * (0.5 + rng.random())
        rows.append(
            f"{START + hour * HOUR},{open_:.2f},{high:.2f},{low:.2f},{close:.2f},{vol:.4f},{rng.randint(1, 50)}"
        )
    path.write_text("\n".join(rows) + "\n")


def universe_config(folder: Path, **universe: Any) -> Any:
    files = {
        "SOL/USD": (1, 100.0, 0.004, 0.01, 5000.0),
        "ETH/USD": (2, 2000.0, -0.003, 0.02, 300.0),
        "DOGE/USD": (3, 0.5, 0.0, 0.03, 1e6),
        "XLM/USD": (4, 0.2, 0.002, 0.01, 10.0),  # not allowlisted: never traded
    }
    feeds = []
    for pair, args in files.items():
        path = folder / f"{pair.replace('/', '')}_60.csv"
        write_pair(path, *args)
        feeds.append({"file": str(path), "pair": pair})
    return config_from_mapping(
        {
            "market": {"speed": "max", "feeds": feeds},
            "paper": {"starting_balances": {"USD": "100000"}, "fee_volume_30d": "0"},
            # Quantities in DOGE run to thousands: the operator's caps bound notionals here, not quantities.
            "risk": {"limits": {"max_order_qty": "1000000"}, "caps": {"max_order_qty": "1000000"}},
            "strategies": [],
            "universe": {
                "source": "scanner",
                "allowlist": ["sol-usd", "ETHUSD", "XDGUSD"],
                "top": 1,
                "rerank_minutes": 24 * 60,
                "warmup_candles": 40,
                "kind": "ema_cross",
                "params": {"fast": 5, "slow": 20},
                **universe,
            },
        }
    )


async def run(engine: Engine) -> None:
    with anyio.fail_after(120):
        await engine.run()


def events(db: Path, kind: str) -> list[dict[str, Any]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute("SELECT payload FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [json.loads(r[0]) for r in rows]


async def test_only_the_chosen_pairs_open_positions_and_every_change_is_logged(tmp_path: Path) -> None:
    config = universe_config(tmp_path)
    db = tmp_path / "u.db"
    engine = Engine.from_config(config, db, options=RunOptions(id_prefix="u"))
    assert sorted(s.pair for s in engine.config.strategies) == ["DOGE/USD", "ETH/USD", "SOL/USD"]
    await run(engine)
    changes = events(db, "universe_changed")
    assert len(changes) >= 2, "the regimes flip: the universe should change at least once after the first pick"
    # Replay the log: at every buy fill, its pair was the universe's only member (top = 1).
    members_at: list[tuple[int, list[str]]] = [(c["market_time_ns"], c["members"]) for c in changes]
    with Store.open_readonly(db) as store:
        fills = store.load_fills()
    buys = [f for f in fills if f.side.value == "buy"]
    assert buys, "the universe's strategy should have bought"
    for fill in buys:
        current = [m for t, m in members_at if t <= fill.ts_ns][-1]
        assert fill.pair in current, (fill.pair, current)
    assert {f.pair for f in fills} <= {"SOL/USD", "ETH/USD", "DOGE/USD"}
    for change in changes:
        assert len(change["members"]) == 1 and set(change["scores"]) == set(change["members"])


async def test_a_restart_decides_as_an_uninterrupted_run(tmp_path: Path) -> None:
    config = universe_config(tmp_path)
    straight = Engine.from_config(config, tmp_path / "a.db", options=RunOptions(id_prefix="u"))
    await run(straight)
    first = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="u", max_events=700))
    await run(first)
    resumed = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="u"))
    await run(resumed)
    assert events(tmp_path / "b.db", "universe_changed") == events(tmp_path / "a.db", "universe_changed")
    p, q = straight.portfolio, resumed.portfolio
    assert {a: b.total for a, b in p.balances.assets().items()} == {a: b.total for a, b in q.balances.assets().items()}
    assert p.fees_paid == q.fees_paid and p.fees_paid > Decimal(0)


def test_a_scanner_universe_needs_an_allowlist() -> None:
    with pytest.raises(ConfigError, match="needs an allowlist"):
        config_from_mapping({"universe": {"source": "scanner"}})
