"""Saved optimisation runs: written whole when a run ends (an interrupted run leaves nothing), listed, and rerun
exactly from their saved arguments."""

import json
import os
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from research.optimize_data import SAMPLE, cli_json, usdt_config

from engine.persistence import Store
from engine.persistence.optimize_runs import list_runs, load_trials
from engine.runtime.cli import main

WAIT_S = 60.0


def _argv(tmp_path: Path, data: Path = SAMPLE) -> list[str]:
    argv = ["optimize", "--data", str(data), "--pair", "XBTUSDT", "--strategy", "ema_cross"]
    argv += ["--param", "fast=2:30", "--param", "slow=10:80", "--trials", "10", "--walk-forward", "2"]
    argv += ["--objective", "return"]
    return [*argv, "--config", str(usdt_config(tmp_path)), "--db", str(tmp_path / "runs.db"), "--no-progress"]


def _counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT count(*) FROM optimize_runs").fetchone()[0]
        trials = conn.execute("SELECT count(*) FROM optimize_trials").fetchone()[0]
    return int(runs), int(trials)


def test_a_run_is_saved_listed_and_rerun_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    first = cli_json(_argv(tmp_path), capsys)
    assert first["run_id"] == 1 and first["trials"] == 20 and first["seed"] == 1
    with Store.open(db) as store:
        (saved,) = list_runs(store)
        trials = load_trials(store, 1)
    assert saved.best_params == first["best"]["params"] and saved.rerun_of is None
    assert str(saved.best_value) == first["best"]["objective"]
    assert saved.args["trials"] == 10 and saved.args["walk_forward"] == 2 and saved.args["seed"] == 1
    assert saved.summary["folds"] == first["folds"]
    assert [(t.number, t.fold) for t in trials] == [(n, 1 + n // 10) for n in range(20)]
    listed = cli_json(["optimize", "--list", "--db", str(db)], capsys)
    assert [(r["id"], r["strategy"], r["trials"], r["best_params"]) for r in listed] == [
        (1, "ema_cross", 20, first["best"]["params"])
    ]
    # --rerun repeats the saved arguments (with two workers this time) and finds the same
    again = cli_json(["optimize", "--rerun", "1", "--db", str(db), "--workers", "2", "--no-progress"], capsys)
    assert (again["run_id"], again["rerun_of"], again["reproduced"]) == (2, 1, True)
    assert again["best"] == first["best"] and again["folds"] == first["folds"]
    with Store.open(db) as store:
        assert [(t.params, t.value, t.metrics) for t in load_trials(store, 2)] == [
            (t.params, t.value, t.metrics) for t in trials
        ]
    capsys.readouterr()
    assert main(["optimize", "--list", "--db", str(db)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 3 and text[1].split()[0] == "1" and text[2].split()[0] == "2"


def test_a_rerun_is_refused_when_its_data_changed_or_it_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shutil.copy(SAMPLE, tmp_path / "sample.json")
    db = tmp_path / "runs.db"
    cli_json(_argv(tmp_path, Path(data)), capsys)
    Path(data).write_text(Path(data).read_text().replace('"106038.2"', '"106038.3"', 1))
    for argv, message in [
        (["--rerun", "1"], f"run 1's data file {Path(data).resolve()} is missing or has changed since"),
        (["--rerun", "9"], f"there is no run 9 in {db}"),
        (["--rerun", "1", "--trials", "3"], "--rerun 1 repeats the saved run's own arguments: leave out --trials"),
    ]:
        capsys.readouterr()
        assert main(["optimize", *argv, "--db", str(db)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"trading-mcp optimize: {message}") and err.count("\n") == 1
    assert _counts(db) == (1, 20)


def test_json_prints_only_the_summary_and_trials_out_every_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "trials.json"
    capsys.readouterr()
    assert main([*_argv(tmp_path), "--json", "--trials-out", str(out_file)]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)  # nothing but the JSON document on stdout
    assert "trials" not in summary["folds"][0]["in_sample"] and isinstance(summary["trials"], int)
    for fold in summary["folds"]:
        for side in ("in_sample", "out_of_sample"):
            assert set(fold[side]) == {"from", "to", "candles", "params", "objective", "metrics"}
        assert fold["deflated_sharpe"] is None or set(fold["deflated_sharpe"]) >= {"dsr", "trials", "significant"}
    trials = json.loads(out_file.read_text())
    assert len(trials) == summary["trials"] == 20
    assert {t["state"] for t in trials} <= {"complete", "undefined", "invalid"}
    assert err == ""  # --no-progress, and no notes for this data


def _wait_for_line(stream: IO[bytes], contains: bytes, deadline: float) -> bytes:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    seen = b""
    while time.monotonic() < deadline:
        if selector.select(timeout=max(0.0, deadline - time.monotonic())):
            line: bytes = stream.readline()
            seen += line
            if contains in line or not line:
                return seen
    raise AssertionError(f"no {contains!r} within the wait; saw {seen!r}")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_interrupted_run_saves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: str) -> None:
    db = tmp_path / "runs.db"
    cli_json(_argv(tmp_path), capsys)  # one finished run, which must stay as it is
    before = _counts(db)
    argv = [a for a in _argv(tmp_path) if a != "--no-progress"]
    argv[argv.index("--trials") + 1] = "5000"
    code = "import sys; from engine.runtime.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", code, *argv, "--workers", workers],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stderr is not None
        # the first progress line comes once a trial has finished: the run is under way
        _wait_for_line(child.stderr, b"optimize: 1/10000 trials", time.monotonic() + WAIT_S)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=WAIT_S)
    assert child.returncode == 130, err
    assert out == b""
    assert b"interrupted after" in err and err.rstrip().endswith(b"trials; nothing saved")
    assert _counts(db) == before == (1, 20)
