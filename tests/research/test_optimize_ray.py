"""``--backend ray``: the same trials as local workers for the same seed (on a local Ray started by the test), and a
clear one-line refusal where Ray is not installed."""

from pathlib import Path

import pytest
from research.optimize_data import SAMPLE, usdt_config

from engine.research.ray_backend import ray_available
from engine.research.report import summary_json, trials_json
from engine.research.run import OptimizeRequest, optimize
from engine.runtime.cli import main


def _request(tmp_path: Path, backend: str, workers: int) -> OptimizeRequest:
    return OptimizeRequest(
        data=SAMPLE,
        strategy="ema_cross",
        params=("fast=2:30", "slow=10:80"),
        pair="XBTUSDT",
        trials=10,
        walk_forward=1,
        seed=5,
        objective="return",
        config=usdt_config(tmp_path),
        backend=backend,
        workers=workers,
    )


@pytest.mark.skipif(not ray_available(), reason='Ray is not installed (pip install -e ".[distributed]")')
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::ResourceWarning")
def test_ray_tasks_find_what_local_workers_find(tmp_path: Path) -> None:
    local = optimize(_request(tmp_path, "local", 1))
    on_ray = optimize(_request(tmp_path, "ray", 2))  # starts a local Ray with 2 CPUs, stops it at the end
    assert trials_json(on_ray) == trials_json(local)
    assert summary_json(on_ray)["folds"] == summary_json(local)["folds"]
    assert on_ray.best is not None and len(on_ray.trials) == 10


@pytest.mark.skipif(ray_available(), reason="Ray is installed here")
def test_without_ray_the_ray_backend_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    argv = ["optimize", "--data", str(SAMPLE), "--pair", "XBTUSDT", "--strategy", "ema_cross"]
    argv += ["--param", "fast=2:30", "--backend", "ray", "--db", str(db)]
    capsys.readouterr()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        'trading-mcp optimize: --backend ray needs Ray, which is not installed: pip install -e ".[distributed]"\n'
    )
    assert not db.exists()
