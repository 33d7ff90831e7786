"""The registry of strategy kinds: the built-in strategies, plus those found in files and installed packages.

:data:`REGISTRY` (kind → class) starts with the built-in strategies. Two kinds of plug-in join it:

* **Files named in the configuration**: ``strategy_paths = ["my_strategies/"]`` (top level of the TOML file, paths
  relative to its folder) names ``.py`` files or folders of them (every ``*.py`` file directly inside whose name
  does not start with ``_``). The configuration loads them before it checks ``[[strategies]]`` (see
  :class:`engine.runtime.config.Config`); each file is imported with importlib under a module name of its own, once
  per process, and every concrete :class:`Strategy` subclass it defines joins the registry. Only the operator's
  configuration names files: nothing an MCP client sends loads or runs one.
* **Installed packages** declaring an entry point in the group ``trading_mcp.strategies`` (pointing at a Strategy
  subclass, or at a module whose Strategy subclasses all join). They are read the first time a kind is looked up
  (:func:`ensure_entry_points`) and again by ``trading-mcp strategies``.

A plug-in that cannot be used is left out and recorded as a :class:`LoadProblem` (where it came from and the error,
:func:`load_problems`), logged once as a warning (so the command line prints it on stderr) and shown by
``trading-mcp strategies``: an import error, an entry point that is not a Strategy subclass, a kind already taken (a
built-in's or another plug-in's), a bad parameter declaration, or defaults its own rules refuse. It never stops the
engine; a configured strategy of a kind that did not load is refused by the configuration as an unknown kind.
"""

import hashlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType

from engine.redaction import redacted_logger
from engine.strategies.base import Param, ParamError, Strategy
from engine.strategies.breakout import Breakout
from engine.strategies.ema_cross import EmaCross
from engine.strategies.mean_reversion import MeanReversion
from engine.strategies.micro_scalper import MicroScalper
from engine.strategies.portfolio_rebalance import PortfolioRebalance
from engine.strategies.rsi_reversal import RsiReversal

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "LoadProblem",
    "PluginError",
    "check_strategy_class",
    "ensure_entry_points",
    "load_entry_points",
    "load_problems",
    "load_strategy_paths",
    "register_strategy",
    "source_of",
    "strategy_files",
]

ENTRY_POINT_GROUP = "trading_mcp.strategies"
BUILTINS: tuple[type[Strategy], ...] = (
    EmaCross,
    MeanReversion,
    RsiReversal,
    Breakout,
    PortfolioRebalance,
    MicroScalper,
)
REGISTRY: dict[str, type[Strategy]] = {cls.kind: cls for cls in BUILTINS}
"""Every usable strategy kind: the built-in ones, then plug-ins as they load."""

_BUILTIN_KINDS = frozenset(cls.kind for cls in BUILTINS)
_KIND = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)  # a kind doubles as a strategy name (backtests)
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)
_sources: dict[str, str] = {}
_problems: dict["LoadProblem", None] = {}
_loaded_files: set[Path] = set()
_entry_points_read = False
_log = redacted_logger(__name__)


class PluginError(ValueError):
    """A class offered as a strategy cannot be used; the message says why in one sentence."""


@dataclass(frozen=True, slots=True)
class LoadProblem:
    """A plug-in left out: ``source`` is where it came from (a file, an entry point), ``error`` why."""

    source: str
    error: str


def load_problems() -> list[LoadProblem]:
    """Every plug-in left out so far in this process, in the order they were met."""
    return list(_problems)


def source_of(kind: str) -> str:
    """Where a registered kind came from: ``built-in``, a file, or an entry point."""
    return "built-in" if kind in _BUILTIN_KINDS else _sources.get(kind, "registered in this process")


def _report(source: str, error: str) -> None:
    problem = LoadProblem(source, error)
    if problem not in _problems:
        _problems[problem] = None
        _log.warning("strategy plug-in %s not loaded: %s", source, error)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _check_param(cls_name: str, param: object, seen: set[str]) -> None:
    if not isinstance(param, Param):
        raise PluginError(f"{cls_name}.params holds {param!r}, which is not a Param")
    if not isinstance(param.name, str) or not _PARAM_NAME.fullmatch(param.name):
        raise PluginError(f"{cls_name} declares a parameter named {param.name!r}, which is not an identifier")
    if param.name in seen:
        raise PluginError(f"{cls_name} declares the parameter {param.name!r} twice")
    seen.add(param.name)
    if param.kind not in ("int", "decimal", "bool"):
        raise PluginError(f"{cls_name}.{param.name}: kind must be int, decimal or bool, not {param.kind!r}")
    if param.kind == "bool" and (param.minimum is not None or param.maximum is not None):
        raise PluginError(f"{cls_name}.{param.name}: a bool parameter has no minimum or maximum")
    if param.minimum is not None and param.maximum is not None and param.minimum > param.maximum:
        raise PluginError(f"{cls_name}.{param.name}: minimum {param.minimum} exceeds maximum {param.maximum}")
    for bound in (param.minimum, param.maximum):
        if bound is not None:
            param.coerce(bound)
    # A default is used as declared (never coerced), so it must already be of the declared type.
    expected = {"int": int, "decimal": Decimal, "bool": bool}[param.kind]
    if type(param.default) is not expected:
        raise PluginError(f"{cls_name}.{param.name}: the default {param.default!r} is not a {expected.__name__}")
    param.coerce(param.default)


def check_strategy_class(obj: object) -> type[Strategy]:
    """``obj`` as a usable strategy class: a concrete Strategy subclass with a kind, a description, a sound
    parameter declaration and defaults its own rules accept (an instance is built with them).

    Raises:
        PluginError: naming the first thing wrong.
    """
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise PluginError(f"{obj!r} is not a Strategy subclass")
    name = obj.__qualname__
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise PluginError(f"{name} does not implement {missing}")
    kind = getattr(obj, "kind", None)
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise PluginError(f"{name}.kind must be 1 to 64 letters, digits, '_', '.' or '-', not {kind!r}")
    description = getattr(obj, "description", None)
    if not isinstance(description, str) or not description.strip():
        raise PluginError(f"{name} has no description")
    own = getattr(obj, "own_params", None)
    if not isinstance(own, tuple) or not isinstance(getattr(obj, "params", None), tuple):
        raise PluginError(f"{name} declares no params tuple (an empty one if it has no parameters)")
    seen: set[str] = set()
    try:
        for param in own:
            _check_param(name, param, seen)
        defaults = obj.validate({}, base=None)
        warmup = obj({}).warmup
        timeframes = obj.timeframes_for(defaults)
    except ParamError as exc:
        raise PluginError(f"{name}: its defaults are refused: {exc}") from None
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"{name} cannot be built with its defaults: {_describe(exc)}") from None
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise PluginError(f"{name}.warmup must be a whole number of candles, not {warmup!r}")
    if not isinstance(timeframes, tuple) or not all(
        isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in timeframes
    ):
        raise PluginError(f"{name}.timeframes must be a tuple of positive whole seconds, not {timeframes!r}")
    return obj


def register_strategy(obj: object, source: str) -> type[Strategy]:
    """Check ``obj`` and add it to :data:`REGISTRY` (registering the same class again changes nothing).

    Raises:
        PluginError: the class is unusable, or its kind is taken by another class.
    """
    cls = check_strategy_class(obj)
    taken = REGISTRY.get(cls.kind)
    if taken is cls:
        return cls
    if taken is not None:
        owner = "a built-in strategy" if cls.kind in _BUILTIN_KINDS else f"the strategy from {source_of(cls.kind)}"
        raise PluginError(f"{cls.__qualname__}.kind {cls.kind!r} is already taken by {owner}")
    REGISTRY[cls.kind] = cls
    _sources[cls.kind] = source
    return cls


def _register_module(module: ModuleType, source: str) -> None:
    """Register every Strategy subclass ``module`` defines (abstract ones without a kind of their own are bases)."""
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj.__module__ == module.__name__
        and not (inspect.isabstract(obj) and "kind" not in obj.__dict__)
    ]
    if not found:
        _report(source, "it defines no Strategy subclass")
    for cls in found:
        try:
            register_strategy(cls, source)
        except PluginError as exc:
            _report(source, str(exc))


def strategy_files(path: Path) -> list[Path]:
    """The files a configured path stands for: itself, or a folder's ``*.py`` files not starting with ``_``."""
    if path.is_dir():
        return sorted(p for p in path.glob("*.py") if p.is_file() and not p.name.startswith("_"))
    return [path] if path.is_file() else []


def _module_name(file: Path) -> str:
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_]", "_", file.stem)
    return f"trading_mcp_strategy_{stem}_{digest}"


def _load_file(file: Path) -> None:
    file = file.resolve()
    if file in _loaded_files:
        return
    _loaded_files.add(file)
    source = str(file)
    name = _module_name(file)
    spec = importlib.util.spec_from_file_location(name, file) if file.suffix == ".py" else None
    if spec is None or spec.loader is None:
        _report(source, "it is not a .py file")
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling and typing look classes up by module name
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        _report(source, f"cannot be imported: {_describe(exc)}")
        return
    _register_module(module, source)


def load_strategy_paths(paths: Iterable[Path]) -> None:
    """Load the strategies of ``paths`` (files or folders; see :func:`strategy_files`) not loaded yet in this
    process. Problems are recorded (:func:`load_problems`), never raised."""
    for path in paths:
        for file in strategy_files(path):
            _load_file(file)


def load_entry_points() -> None:
    """Read the ``trading_mcp.strategies`` entry points of the installed packages and register what they name.
    Problems are recorded (:func:`load_problems`), never raised."""
    global _entry_points_read
    _entry_points_read = True
    try:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:
        _report(f"the {ENTRY_POINT_GROUP} entry points", f"cannot be read: {_describe(exc)}")
        return
    for entry in found:
        package = entry.dist.name if entry.dist is not None else "an unnamed package"
        source = f"entry point {entry.name} = {entry.value} (package {package})"
        try:
            obj = entry.load()
        except (Exception, SystemExit) as exc:
            _report(source, f"cannot be imported: {_describe(exc)}")
            continue
        if isinstance(obj, ModuleType):
            _register_module(obj, source)
            continue
        try:
            register_strategy(obj, source)
        except PluginError as exc:
            _report(source, str(exc))


def ensure_entry_points() -> None:
    """:func:`load_entry_points` once per process."""
    if not _entry_points_read:
        load_entry_points()
