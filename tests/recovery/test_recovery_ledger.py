"""The checks of the crash test must be able to fail: each invariant is shown a state file broken on purpose.

A good state file comes from one whole run of the shipped sample; each test copies it and breaks one thing with
plain sqlite3 (a balance off by a satoshi, a fill dated before its order, ...), then asserts that the ledger, the
comparison or the cap check names exactly that.
"""

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from recovery.caps import buys_above_cap
from recovery.child import run_child
from recovery.compare import diff_outcomes, outcome_of
from recovery.data import BIG_CSV, SAMPLE, count_events
from recovery.ledger import check_file
from recovery.state import order_number, read_state, trade_key

EVENTS = 720


@pytest.fixture(scope="module")
def good_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file of one uninterrupted run."""
    db = tmp_path_factory.mktemp("good") / "good.db"
    run = run_child(db, timeout_s=120)
    assert run.finished, run.last_line
    return db


@pytest.fixture
def state(good_state: Path, tmp_path: Path) -> Path:
    """A private copy of the good state, to break."""
    copy = tmp_path / "state.db"
    shutil.copyfile(good_state, copy)
    return copy


def _sql(db: Path, statement: str, *args: object) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(statement, args)
    finally:
        conn.close()


def _one(db: Path, query: str) -> tuple[str, ...]:
    """The first row of ``query``, as text (every column these tests read is TEXT)."""
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(query).fetchone()
    finally:
        conn.close()
    assert row is not None, query
    return tuple(str(value) for value in row)


def _kinds(db: Path) -> set[str]:
    return {v.kind for v in check_file(db, EVENTS)}


def test_an_uninterrupted_run_passes_every_check(good_state: Path) -> None:
    assert check_file(good_state, EVENTS) == []


def test_a_balance_off_by_one_satoshi_is_caught(state: Path) -> None:
    (total,) = _one(state, "SELECT total FROM balances WHERE asset = 'BTC'")
    _sql(state, "UPDATE balances SET total = ? WHERE asset = 'BTC'", str(Decimal(total) + Decimal("1E-8")))
    violations = check_file(state, EVENTS)
    assert [v.kind for v in violations] == ["balances"]
    assert "BTC" in violations[0].reason and "off by 0.00000001" in violations[0].reason


def test_a_fee_that_the_balance_does_not_show_is_caught(state: Path) -> None:
    (trade_id,) = _one(state, "SELECT trade_id FROM fills ORDER BY ts_ns LIMIT 1")
    _sql(state, "UPDATE fills SET fee = '0' WHERE trade_id = ?", trade_id)
    # The balance no longer matches the fills, and the order's fees no longer match its fill.
    assert _kinds(state) == {"balances", "order_vs_fills"}


def test_a_fill_dated_before_its_order_is_caught(state: Path) -> None:
    (trade_id,) = _one(state, "SELECT trade_id FROM fills ORDER BY ts_ns LIMIT 1 OFFSET 3")
    _sql(state, "UPDATE fills SET ts_ns = ts_ns - 60000000000 WHERE trade_id = ?", trade_id)
    violations = check_file(state, EVENTS)
    assert [v.kind for v in violations] == ["fill_before_order"]
    assert trade_id in violations[0].reason and "60 s before" in violations[0].reason


def test_a_fill_whose_order_is_missing_is_caught(state: Path) -> None:
    (client_id,) = _one(state, "SELECT client_id FROM fills ORDER BY ts_ns LIMIT 1")
    _sql(state, "DELETE FROM orders WHERE client_id = ?", client_id)
    assert _kinds(state) == {"orphan_fill"}


def test_an_order_number_used_twice_is_caught(state: Path) -> None:
    (client_id,) = _one(state, "SELECT client_id FROM orders ORDER BY client_id LIMIT 1")
    # The same number under a second prefix (what a restart that forgot its id prefix would write), canceled
    # unfilled so that nothing but the number is wrong.
    _sql(
        state,
        "INSERT INTO orders SELECT 'ffffff' || substr(client_id, instr(client_id, '-')), pair, side, order_type, qty,"
        " limit_price, strategy, 'canceled', NULL, '0', '0', '0', reason, created_ts_ns, updated_ts_ns, '[]',"
        " expires_ns, reprice_of"
        " FROM orders WHERE client_id = ?",
        client_id,
    )
    violations = check_file(state, EVENTS)
    assert [v.kind for v in violations] == ["ids"]
    assert violations[0].reason.startswith(f"order number {order_number(client_id)} is used by ")


def test_a_trade_listed_by_two_orders_is_caught(state: Path) -> None:
    first, second = (
        _one(state, "SELECT client_id, trade_ids FROM orders ORDER BY client_id LIMIT 1 OFFSET 0"),
        _one(state, "SELECT client_id, trade_ids FROM orders ORDER BY client_id LIMIT 1 OFFSET 1"),
    )
    merged = second[1][:-1] + "," + first[1][1:]
    _sql(state, "UPDATE orders SET trade_ids = ? WHERE client_id = ?", merged, second[0])
    assert _kinds(state) == {"ids", "order_vs_fills"}


def test_an_order_whose_status_disagrees_with_its_fills_is_caught(state: Path) -> None:
    (client_id,) = _one(state, "SELECT client_id FROM orders WHERE status = 'filled' LIMIT 1")
    _sql(state, "UPDATE orders SET status = 'new' WHERE client_id = ?", client_id)
    violations = check_file(state, EVENTS)
    assert [v.kind for v in violations] == ["order_vs_fills"]
    assert client_id in violations[0].reason and "(new)" in violations[0].reason


def test_an_order_whose_filled_qty_disagrees_with_its_fills_is_caught(state: Path) -> None:
    (client_id,) = _one(state, "SELECT client_id FROM orders WHERE status = 'filled' LIMIT 1")
    _sql(state, "UPDATE orders SET filled_qty = '0', status = 'canceled' WHERE client_id = ?", client_id)
    reasons = [v.reason for v in check_file(state, EVENTS) if v.kind == "order_vs_fills"]
    assert any("filled_qty 0, its fills sum" in r for r in reasons)


def test_a_position_that_its_fills_do_not_add_up_to_is_caught(state: Path) -> None:
    _sql(state, "UPDATE positions SET qty = '0.5' WHERE strategy = 'ema_cross'")
    violations = check_file(state, EVENTS)
    assert [v.kind for v in violations] == ["positions"]
    assert "ema_cross/BTC/USD" in violations[0].reason


def test_an_equity_curve_that_goes_back_in_time_is_caught(state: Path) -> None:
    _sql(state, "UPDATE equity SET ts_ns = 0 WHERE id = (SELECT max(id) FROM equity)")
    assert _kinds(state) == {"equity"}


def test_a_cursor_past_the_data_is_caught(state: Path) -> None:
    _sql(state, "UPDATE kv SET value = '721' WHERE key = 'cursor'")
    assert _kinds(state) == {"cursor"}
    assert check_file(state, None) == []  # without the data's length there is no upper bound


def test_a_column_that_is_not_decimal_text_is_reported_unreadable(state: Path) -> None:
    _sql(state, "UPDATE balances SET total = 'lots' WHERE asset = 'USD'")
    violations = check_file(state, EVENTS)
    assert [v.kind for v in violations] == ["unreadable"]
    assert "balance USD" in violations[0].reason


def test_a_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    assert read_state(tmp_path / "none.db").empty
    assert check_file(tmp_path / "none.db", EVENTS) == []


def test_orders_and_fills_are_matched_by_number_not_by_prefix(state: Path, good_state: Path) -> None:
    (client_id,) = _one(state, "SELECT client_id FROM orders LIMIT 1")
    prefix = client_id.split("-")[0]
    for table, column in (("fills", "trade_id"), ("fills", "client_id"), ("orders", "client_id")):
        _sql(state, f"UPDATE {table} SET {column} = replace({column}, ?, 'abcdef')", prefix)
    _sql(state, "UPDATE orders SET trade_ids = replace(trade_ids, ?, 'abcdef')", prefix)
    assert check_file(state, EVENTS) == []
    assert diff_outcomes(outcome_of(read_state(state)), outcome_of(read_state(good_state))) == []


def test_a_fill_at_another_price_diverges_from_the_uninterrupted_run(state: Path, good_state: Path) -> None:
    (trade_id,) = _one(state, "SELECT trade_id FROM fills ORDER BY ts_ns LIMIT 1 OFFSET 5")
    _sql(state, "UPDATE fills SET price = '1' WHERE trade_id = ?", trade_id)
    divergences = diff_outcomes(outcome_of(read_state(state)), outcome_of(read_state(good_state)))
    assert [d.kind for d in divergences] == ["fills"]
    assert "price 1 (uninterrupted" in divergences[0].reason


def test_a_missing_equity_point_diverges_from_the_uninterrupted_run(state: Path, good_state: Path) -> None:
    _sql(state, "DELETE FROM equity WHERE id = (SELECT max(id) FROM equity)")
    divergences = diff_outcomes(outcome_of(read_state(state)), outcome_of(read_state(good_state)))
    assert [d.kind for d in divergences] == ["equity_curve", "last_equity"]


def test_buys_above_the_lowered_cap_are_caught(good_state: Path) -> None:
    # The default strategies buy for 1,000 USD: every one is above the 500 cap.
    state = read_state(good_state)
    checked, above = buys_above_cap(state, after_number=0)
    buys = sum(o.side == "buy" for o in state.orders)
    assert checked == buys > 0
    assert len(above) == buys
    last = max(n for n in (order_number(o.client_id) for o in state.orders) if n is not None)
    assert buys_above_cap(state, after_number=last) == (0, [])


def test_ids_are_reduced_to_their_order_numbers() -> None:
    assert order_number("ab12cd-000000007") == 7
    assert order_number("manual") is None
    assert trade_key("ab12cd-000000007-2", "ab12cd-000000007") == "7-2"
    assert trade_key("T-XYZ", "ab12cd-000000007") == "T-XYZ"


def test_the_samples_events_are_counted_without_the_still_open_candle() -> None:
    assert count_events(None) == count_events(SAMPLE) == EVENTS


def test_the_big_csvs_events_are_its_lines(shared_dir: Path) -> None:
    if not BIG_CSV.exists():
        pytest.skip(f"{BIG_CSV.name} is not present")
    assert count_events(BIG_CSV) == 50378
