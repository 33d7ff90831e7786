"""Strategy plug-ins: from files named by the configuration's ``strategy_paths`` (the README's own example, loaded
from a folder), from installed packages' ``trading_mcp.strategies`` entry points (a distribution built here, put on
the interpreter's path), and broken ones, each reported with its error while the others load and trade.
``trading-mcp strategies --json`` lists them all, the common parameters once."""

import json
import logging
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from strategies.shipped_backtest import (
    backtest_json,
    expected_fills,
    fill_sides_and_times,
    shipped_candles,
    usdt_config,
)

from engine.runtime.cli import main
from engine.runtime.config import ConfigError, config_from_mapping, load_config
from engine.strategies import REGISTRY, ParamError, strategy_class
from engine.strategies.common_params import COMMON_PARAMS
from engine.strategies.discovery import LoadProblem, load_problems

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def registry_restored() -> Iterator[None]:
    """Plug-ins registered by a test leave the process's registry (and their modules) when it ends."""
    saved = dict(REGISTRY)
    modules = set(sys.modules)
    yield
    REGISTRY.clear()
    REGISTRY.update(saved)
    for name in set(sys.modules) - modules:
        if name.startswith(("trading_mcp_strategy_", "ep_demo_")):
            del sys.modules[name]


def readme_example() -> tuple[str, str]:
    """The strategy file and the configuration lines of the README's "Your own strategy" section."""
    section = README.read_text(encoding="utf-8").split("\n## Your own strategy\n", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    assert python is not None and toml is not None
    return python.group(1), toml.group(1)


def strategies_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["strategies", "--json", *argv]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def problems_from(source: str) -> list[str]:
    return [p.error for p in load_problems() if p.source.startswith(source)]


def plain_momentum(closes: list[Decimal], rises: int, falls: int) -> list[str | None]:
    out: list[str | None] = [None]
    held, ups, downs = False, 0, 0
    for prev, close in pairwise(closes):
        ups = ups + 1 if close > prev else 0
        downs = downs + 1 if close < prev else 0
        signal = None
        if not held and ups >= rises:
            signal, held = "buy", True
        elif held and downs >= falls:
            signal, held = "sell", False
        out.append(signal)
    return out


def test_the_readme_strategy_loads_from_a_configured_folder_is_listed_and_trades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, toml = readme_example()
    folder = tmp_path / "my_strategies"
    folder.mkdir()
    (folder / "momentum.py").write_text(code)
    config = usdt_config(tmp_path, toml)  # strategy_paths relative to the config file, not to the test's cwd
    assert not Path("my_strategies").exists()

    loaded = load_config(config)
    assert [(s.kind, dict(s.params)) for s in loaded.strategies] == [("momentum", {"rises": 4, "falls": 2})]
    cls = strategy_class("momentum")
    assert cls.param("stop_loss_pct") == COMMON_PARAMS[0]  # the common parameters come with a plug-in too
    with pytest.raises(ParamError, match=r"^rises: 51 is above the maximum 50$"):
        cls.validate({"rises": 51}, base=None)

    listed = strategies_json(capsys, "--config", str(config))
    (mine,) = [s for s in listed["strategies"] if s["kind"] == "momentum"]
    assert mine["source"] == str((folder / "momentum.py").resolve())
    assert mine["params"] == [
        {
            "name": "rises",
            "type": "int",
            "minimum": 1,
            "maximum": 50,
            "default": 3,
            "description": cls.params[0].description,
        },
        {
            "name": "falls",
            "type": "int",
            "minimum": 1,
            "maximum": 50,
            "default": 2,
            "description": cls.params[1].description,
        },
    ]
    assert {s["kind"] for s in listed["strategies"]} >= {"ema_cross", "mean_reversion", "rsi_reversal", "breakout"}
    common = {p.name for p in COMMON_PARAMS}
    assert [p["name"] for p in listed["common_params"]] == [p.name for p in COMMON_PARAMS]
    assert not any(p["name"] in common for s in listed["strategies"] for p in s["params"])
    assert problems_from(str(folder)) == []

    result = backtest_json("momentum", config, capsys, "rises=4", "falls=3")
    candles = shipped_candles()
    signals = plain_momentum([c.close for c in candles], 4, 3)
    expected = expected_fills(signals, candles)
    assert fill_sides_and_times(result) == expected


def write_distribution(site: Path) -> None:
    """An installed distribution as importlib.metadata finds it on sys.path: a package and its dist-info."""
    package = site / "ep_demo_strategies"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from decimal import Decimal\n"
        "from typing import ClassVar\n"
        "from engine.strategies import Param, ParamError, Signal, Strategy\n\n"
        "class Alternate(Strategy):\n"
        "    kind = 'ep_alternate'\n"
        "    description = 'Buys when flat, sells when holding: every candle after the first `wait`.'\n"
        "    params: ClassVar[tuple[Param, ...]] = (Param('wait', 'int', 5, 0, 1000, 'Candles to sit out.'),)\n"
        "    def reset(self):\n"
        "        self.seen = 0\n"
        "    def on_candle(self, candle, ctx):\n"
        "        self.seen += 1\n"
        "        if self.seen <= self.values['wait']:\n"
        "            return None\n"
        "        return Signal('sell' if ctx.position_qty > 0 else 'buy')\n\n"
        "class Clash(Alternate):\n"
        "    kind = 'ema_cross'\n\n"
        "class BadDefault(Alternate):\n"
        "    kind = 'ep_bad_default'\n"
        "    params: ClassVar[tuple[Param, ...]] = (Param('wait', 'int', 0, 1, 100, 'Below its own minimum.'),)\n\n"
        "class BadCombination(Alternate):\n"
        "    kind = 'ep_bad_combination'\n"
        "    @classmethod\n"
        "    def check_combination(cls, values):\n"
        "        raise ParamError('wait must be odd')\n\n"
        "helper = 42\n"
    )
    info = site / "ep_demo_strategies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-demo-strategies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[trading_mcp.strategies]\n"
        "alternate = ep_demo_strategies:Alternate\n"
        "clash = ep_demo_strategies:Clash\n"
        "bad_default = ep_demo_strategies:BadDefault\n"
        "bad_combination = ep_demo_strategies:BadCombination\n"
        "helper = ep_demo_strategies:helper\n"
        "missing = ep_demo_missing_module:Thing\n"
    )


def test_an_installed_packages_entry_point_strategy_is_listed_and_trades_and_its_broken_ones_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_distribution(tmp_path / "site")
    monkeypatch.syspath_prepend(tmp_path / "site")  # the interpreter's path, as an installed package would be

    listed = strategies_json(capsys)
    (mine,) = [s for s in listed["strategies"] if s["kind"] == "ep_alternate"]
    source = "entry point alternate = ep_demo_strategies:Alternate (package ep-demo-strategies)"
    assert mine["source"] == source
    assert mine["params"] == [
        {
            "name": "wait",
            "type": "int",
            "minimum": 0,
            "maximum": 1000,
            "default": 5,
            "description": "Candles to sit out.",
        }
    ]
    problems = {p["source"].split(" = ")[0]: p["error"] for p in listed["problems"] if "ep_demo" in p["source"]}
    assert problems == {
        "entry point clash": "Clash.kind 'ema_cross' is already taken by a built-in strategy",
        "entry point bad_default": "BadDefault: its defaults are refused: wait: 0 is below the minimum 1",
        "entry point bad_combination": "BadCombination: its defaults are refused: wait must be odd",
        "entry point helper": "42 is not a Strategy subclass",
        "entry point missing": "cannot be imported: ModuleNotFoundError: No module named 'ep_demo_missing_module'",
    }
    assert strategy_class("ema_cross").__module__ == "engine.strategies.ema_cross"  # the built-in stays

    result = backtest_json("ep_alternate", usdt_config(tmp_path), capsys, "wait=700")
    candles = shipped_candles()
    signals = [None] * 700 + ["buy" if i % 2 == 0 else "sell" for i in range(len(candles) - 700)]
    assert fill_sides_and_times(result) == expected_fills(signals, candles)


BROKEN = {
    "syntax.py": "def broken(:\n",
    "raises.py": "raise RuntimeError('no network here')\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "nothing.py": "X = 1\n",
    "_helper.py": "raise RuntimeError('files starting with _ are not loaded')\n",
}


def broken_folder(folder: Path) -> None:
    folder.mkdir()
    code, _ = readme_example()
    good = code.replace('kind = "momentum"', 'kind = "folder_good"')
    (folder / "good.py").write_text(good + "\nwith open(__file__ + '.imported', 'a') as f:\n    f.write('x')\n")
    (folder / "clash.py").write_text(code.replace('kind = "momentum"', 'kind = "breakout"'))
    (folder / "twin.py").write_text(good)
    (folder / "int_default.py").write_text(
        code.replace('kind = "momentum"', 'kind = "int_default"').replace(
            'Param("falls", "int", 2,', 'Param("falls", "decimal", 2,'
        )
    )
    (folder / "abstract.py").write_text(
        code.replace('kind = "momentum"', 'kind = "abstract"').replace("def on_candle", "def on_candle_")
    )
    (folder / "twice.py").write_text(
        code.replace('kind = "momentum"', 'kind = "twice"').replace('Param("falls",', 'Param("rises",')
    )
    for name, text in BROKEN.items():
        (folder / name).write_text(text)


def test_broken_plugins_are_reported_with_their_error_and_the_others_still_load_and_trade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "mixed"
    broken_folder(folder)
    strategies = '\n[[strategies]]\nname = "good"\nkind = "folder_good"\n'
    config = usdt_config(tmp_path, f'strategy_paths = ["mixed"]\n{strategies}')
    with caplog.at_level(logging.WARNING, logger="engine.strategies.discovery"):
        assert [s.kind for s in load_config(config).strategies] == ["folder_good"]
    resolved = folder.resolve()
    assert {Path(p.source).name: p.error for p in load_problems() if p.source.startswith(str(resolved))} == {
        "abstract.py": "Momentum does not implement on_candle",
        "clash.py": "Momentum.kind 'breakout' is already taken by a built-in strategy",
        "exits.py": "cannot be imported: SystemExit: 3",
        "int_default.py": "Momentum.falls: the default 2 is not a Decimal",
        "nothing.py": "it defines no Strategy subclass",
        "raises.py": "cannot be imported: RuntimeError: no network here",
        "syntax.py": "cannot be imported: SyntaxError: invalid syntax (syntax.py, line 1)",
        "twice.py": "Momentum declares the parameter 'rises' twice",
        "twin.py": f"Momentum.kind 'folder_good' is already taken by the strategy from {resolved / 'good.py'}",
    }
    assert len(caplog.records) == 9  # each logged once, as a warning (on stderr from the command line)
    assert all(r.getMessage().startswith(f"strategy plug-in {resolved}") for r in caplog.records)

    # Loaded once per process: the same configuration again imports nothing again and reports nothing new.
    before = load_problems()
    load_config(config)
    assert load_problems() == before
    assert (folder / "good.py.imported").read_text() == "x"

    listed = strategies_json(capsys, "--config", str(config))
    assert "folder_good" in {s["kind"] for s in listed["strategies"]}
    assert LoadProblem(str(resolved / "raises.py"), "cannot be imported: RuntimeError: no network here") in [
        LoadProblem(**p) for p in listed["problems"]
    ]
    fill_sides_and_times(backtest_json("folder_good", config, capsys))

    # A configured strategy of a kind that failed to load is refused, pointing at the listing.
    refused = usdt_config(tmp_path, f'strategy_paths = ["mixed"]\n{strategies.replace("folder_good", "abstract")}')
    failed = len(load_problems())  # this process's: these nine, and any an earlier test left
    assert failed >= 9
    with pytest.raises(ConfigError) as refusal:
        load_config(refused)
    assert re.search(r"unknown strategy kind 'abstract' \(known: [a-z_, ]*folder_good[a-z_, ]*\); ", str(refusal.value))
    assert str(refusal.value).endswith(f"; {failed} strategy plug-ins failed to load (trading-mcp strategies says why)")
    capsys.readouterr()
    assert main(["strategies", "--json", "--config", str(refused)]) == 2  # the list still, then the refusal
    out, err = capsys.readouterr()
    assert "folder_good" in {s["kind"] for s in json.loads(out)["strategies"]}
    assert err.startswith(
        "trading-mcp strategies: invalid configuration: strategies.0: Value error, strategy 'good': "
        "unknown strategy kind 'abstract'"
    )


def test_a_configured_path_that_does_not_exist_is_refused_in_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        ConfigError,
        match=rf"^invalid configuration: strategy_paths: Value error, {missing} is "
        r"neither a folder nor a \.py file$",
    ):
        config_from_mapping({"strategy_paths": [str(missing)]})
    (tmp_path / "notes.txt").write_text("not python")
    with pytest.raises(ConfigError, match=r"notes\.txt is neither a folder nor a \.py file$"):
        config_from_mapping({"strategy_paths": [str(tmp_path / "notes.txt")]})


def test_the_text_listing_shows_the_common_parameters_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategies"]) == 0
    text = capsys.readouterr().out
    assert text.count("stop_loss_pct") == 1
    assert "rsi_reversal (built-in)" in text and "breakout (built-in)" in text
    assert "    oversold             decimal  1..99          default 30       Buy when RSI rises" in text
