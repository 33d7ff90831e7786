"""A state file that cannot be used is refused in one line that says how to get going, never a traceback."""

from pathlib import Path

import pytest

from engine.runtime.cli import main


def test_a_damaged_state_file_is_named_with_the_way_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "e.db"
    db.write_bytes(b"this is not a database" * 100)
    assert main(["run", "--speed", "max", "--quiet", "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "is not a database" in err and "--reset" in err
    assert main(["run", "--speed", "max", "--quiet", "--reset", "--db", str(db)]) == 0  # and the way out works
