"""Where the benchmarks find the shared reference data, from any checkout location, and what they refuse.

The project's own sample (720 one-minute candles) is too short to measure anything but start-up, so the benches
replay ``shared/data/kraken-ohlcvt/XBTUSD_60.csv`` (50,378 hourly candles, not shipped: see its licence in
``shared/data/README.md``). A checkout beside ``shared/`` finds it by its parent folder; a clone elsewhere used to
fall back silently to the sample and measure an idle engine. The file is now looked for, in order:

1. ``$TRADING_MCP_SHARED`` (the ``shared`` folder itself);
2. ``shared/`` beside the checkout or beside any folder above it;
3. ``shared/`` beside the repository this checkout was cloned from (``git remote get-url origin``, when it is a
   local path) or beside the main checkout of a git worktree.

A bench that cannot find it, or finds a file that is not the workload it claims (:func:`checked_candles`), prints
why and exits with status 2 instead of printing a figure.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
XBTUSD_60 = Path("data") / "kraken-ohlcvt" / "XBTUSD_60.csv"
XBTUSD_60_CANDLES = 50_378  # rows of the shared file (the figures in the README were measured on it)
ENV = "TRADING_MCP_SHARED"

__all__ = ["ENV", "REPO", "XBTUSD_60", "XBTUSD_60_CANDLES", "checked_candles", "find_shared", "refuse", "shared_roots"]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def shared_roots() -> list[Path]:
    """The folders that may be the shared one, most specific first (existing or not)."""
    roots: list[Path] = []
    if os.environ.get(ENV):
        roots.append(Path(os.environ[ENV]).expanduser())
    roots += [folder / "shared" for folder in REPO.parents]
    origin = _git("remote", "get-url", "origin")
    if origin is not None and "://" not in origin and not origin.startswith("git@"):
        source = (REPO / origin).resolve() if not Path(origin).is_absolute() else Path(origin)
        roots += [folder / "shared" for folder in source.parents]
    common = _git("rev-parse", "--path-format=absolute", "--git-common-dir")
    if common is not None:  # a worktree's main checkout holds the common .git folder
        roots += [folder / "shared" for folder in Path(common).parents]
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def find_shared(relative: Path = XBTUSD_60) -> Path | None:
    """The first ``<shared>/relative`` that exists, or ``None``."""
    for root in shared_roots():
        if (root / relative).is_file():
            return root / relative
    return None


def refuse(bench: str, reason: str) -> int:
    """Print why no figure is printed; the exit status (2) for ``sys.exit``."""
    print(f"{bench}: no figure: {reason}", file=sys.stderr)
    return 2


def checked_candles(path: Path, *, at_least: int) -> int:
    """The rows of a Kraken OHLCVT CSV (non-empty lines), after checking that it holds at least ``at_least``.

    Raises:
        ValueError: the file is absent or shorter than the workload needs (the message says which).
    """
    if not path.is_file():
        raise ValueError(f"{path} is absent (set ${ENV} to the shared folder, or pass --data)")
    with path.open("rb") as f:
        rows = sum(1 for line in f if line.strip())
    if rows < at_least:
        raise ValueError(f"{path} has {rows} candles, fewer than the {at_least} this workload needs")
    return rows
