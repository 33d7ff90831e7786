"""The code gates run with the tests: ruff (lint and format) and mypy --strict over packages, tests and benches."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["engine", "trading_mcp", "tests", "bench"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module", autouse=True)
def _tools_present() -> None:
    for module in ("ruff", "mypy"):
        if shutil.which(module) is None and _run(module, "--version").returncode != 0:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")


def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr
