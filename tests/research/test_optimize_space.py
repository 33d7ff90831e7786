"""The search space: --param specs become exact ranges of the strategy's declared kinds, and every bad one is
refused in one sentence before anything runs or is saved."""

from decimal import Decimal
from pathlib import Path

import pytest
from research.optimize_data import SAMPLE

from engine.research.errors import OptimizeError
from engine.research.space import parse_space
from engine.runtime.cli import main
from engine.strategies import EmaCross, MeanReversion


def test_ranges_take_the_declared_kind_and_fixed_values_stay_fixed() -> None:
    space = parse_space(
        MeanReversion,
        ["period=10:40:7", "entry_z=1.5:2.5", "exit_z=0.25", "stop_loss_pct=1:2:0.25", "entry_post_only=false:true"],
    )
    ranges = {r.name: r for r in space.ranges}
    # period 10, 17, 24, 31, 38: the high end is the last value the step reaches
    assert ranges["period"].grid() == [10, 17, 24, 31, 38]
    assert [ranges["period"].value(v) for v in ranges["period"].grid()] == [10, 17, 24, 31, 38]
    # a decimal range without a step: a hundredth of the range, rounded down to a power of ten (0.01 here)
    entry = ranges["entry_z"]
    assert entry.count == 101 and entry.value(0) == Decimal("1.5") and entry.value(100) == Decimal("2.50")
    assert all(isinstance(entry.value(i), Decimal) for i in range(entry.count))
    stop = ranges["stop_loss_pct"]
    assert [stop.value(i) for i in range(stop.count)] == [Decimal(x) for x in ("1", "1.25", "1.50", "1.75", "2.00")]
    assert ranges["entry_post_only"].grid() == [False, True]
    assert space.fixed == {"exit_z": Decimal("0.25")}
    assert space.grid_size == 5 * 101 * 5 * 2
    decoded = space.decode({"period": 17, "entry_z": 3, "stop_loss_pct": 4, "entry_post_only": True})
    assert decoded == {
        "exit_z": Decimal("0.25"),
        "period": 17,
        "entry_z": Decimal("1.53"),
        "stop_loss_pct": Decimal("2.00"),
        "entry_post_only": True,
    }
    # every value a range holds is one the strategy accepts on its own
    for r in space.ranges:
        for proposed in r.grid():
            MeanReversion.param(r.name).coerce(r.value(proposed))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["fats=5:50"], "--param 'fats=5:50': unknown parameter 'fats' for ema_cross (known: fast, slow,"),
        (["fast=50:5"], "--param 'fast=50:5': the low end 50 is above the high end"),
        (["fast=1:50"], "--param 'fast=1:50': fast: 1 is below the minimum 2"),
        (["slow=20:5000"], "--param 'slow=20:5000': slow: 5000 is above the maximum 2000"),
        (["fast=5.5:9"], "--param 'fast=5.5:9': fast: expected a whole number, got '5.5'"),
        (["fast=5:50:0"], "--param 'fast=5:50:0': the step '0' must be a positive number"),
        (["fast=5:50:2.5"], "--param 'fast=5:50:2.5': an int parameter steps by a whole number, not 2.5"),
        (["fast=5:9:10"], "--param 'fast=5:9:10': the step 10 is larger than the range"),
        (["fast"], "--param 'fast': use NAME=VALUE, NAME=LOW:HIGH or NAME=LOW:HIGH:STEP"),
        (["fast=1:2:3:4"], "--param 'fast=1:2:3:4': use NAME=VALUE, NAME=LOW:HIGH or NAME=LOW:HIGH:STEP"),
        (["fast=5:9", "fast=6:9"], "--param fast is given twice"),
        (["fast=5"], "nothing to search: give at least one --param NAME=LOW:HIGH"),
        (["entry_post_only=yes"], "--param 'entry_post_only=yes': entry_post_only: expected true or false, got 'yes'"),
    ],
)
def test_a_bad_range_or_an_unknown_parameter_is_refused_in_one_sentence(
    spec: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(OptimizeError) as caught:
        parse_space(EmaCross, spec)
    assert str(caught.value).startswith(message)
    db = tmp_path / "runs.db"
    argv = ["optimize", "--data", str(SAMPLE), "--pair", "XBTUSDT", "--strategy", "ema_cross", "--db", str(db)]
    for item in spec:
        argv += ["--param", item]
    capsys.readouterr()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"trading-mcp optimize: {caught.value}\n"  # one line, no traceback
    assert "\n" not in str(caught.value) and str(caught.value).count(". ") == 0
    assert not db.exists()  # nothing ran, nothing was saved


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], "--trials 0: give a number of 1 or more"),
        (["--workers", "0"], "--workers 0: give a number of 1 or more"),
        (["--walk-forward", "40"], "--walk-forward 40 cuts 720 candles into blocks of 17, fewer than 20:"),
        (
            ["--strategy", "nope"],
            "unknown strategy kind 'nope' (known: breakout, ema_cross, mean_reversion, micro_scalper, "
            "portfolio_rebalance, rsi_reversal)",
        ),
        (["--address", "x:1"], "--address names a Ray cluster: it needs --backend ray"),
        (["--data", "/nonexistent/file.csv"], "data file /nonexistent/file.csv does not exist or is not a file"),
        (
            ["--sampler", "grid", "--param", "slow=3:2000", "--param", "time_stop_candles=0:10"],
            "the grid holds 10,967,022 combinations (at most 1,000,000)",
        ),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    argv = ["optimize", "--data", str(SAMPLE), "--pair", "XBTUSDT", "--strategy", "ema_cross", "--db", str(db)]
    argv += ["--param", "fast=2:500", *extra]
    capsys.readouterr()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"trading-mcp optimize: {message}") and err.count("\n") == 1
    assert not db.exists()
