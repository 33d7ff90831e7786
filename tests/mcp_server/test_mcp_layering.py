"""Layering: ``trading_mcp`` depends on ``engine``, never the other way; ``engine`` never imports ``mcp``."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("mcp", "mcp_types", "trading_mcp")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def engine_files() -> list[Path]:
    return sorted((REPO / "engine").rglob("*.py"))


def test_the_engine_package_is_there() -> None:
    assert len(engine_files()) > 10


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_engine_module_never_imports_mcp(path: Path) -> None:
    offending = [m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN]
    assert offending == [], f"{path.relative_to(REPO)} imports {offending}"


def test_the_checker_sees_all_import_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import mcp\nfrom mcp.server import x\nimport importlib\nimportlib.import_module('mcp_types')\n"
        "__import__('trading_mcp')\nfrom . import sibling\n"
    )
    assert imported_modules(sample) == ["mcp", "mcp.server", "importlib", "mcp_types", "trading_mcp"]
