"""The search space of an optimisation: ``--param`` specs checked against the strategy's declared parameters.

Spec syntax (one ``--param`` each):

* ``name=value`` fixes a parameter for every trial;
* ``name=low:high`` searches it between both ends, inclusive; ``name=low:high:step`` on that step;
* a bool parameter is fixed (``name=true``) or searched over both values (``name=false:true``).

An ``int`` parameter steps by 1 unless told; its high end is the last value the step reaches. A ``decimal``
parameter is searched on a grid too, so that every value tried is an exact Decimal (never a float's digits):
``low + i * step``; without a step, the step is the power of ten a hundredth of the range or less (0:90 steps
by 0.1, 0.5:5 by 0.01). Both ends are checked against the parameter's declared minimum and maximum, so every value
tried is one the strategy accepts on its own; combinations the strategy refuses (EMA ``fast`` not below ``slow``)
are told apart per trial, not refused up front.

Optuna sees an ``int`` parameter as itself, a ``decimal`` one as the index of its value on its grid and a bool as
a choice between false and true; :meth:`SearchSpace.decode` turns what it proposes back into parameter values.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import prod
from typing import Any, Literal

from engine.research.errors import OptimizeError
from engine.strategies import ParamError, ParamValue, Strategy

__all__ = ["MAX_GRID", "ParamRange", "SearchSpace", "parse_space", "show_value", "show_values"]

MAX_GRID = 1_000_000
"""The most combinations a grid search may hold (the grid sampler lists them all up front)."""
_USAGE = "use NAME=VALUE, NAME=LOW:HIGH or NAME=LOW:HIGH:STEP"


def show_value(value: ParamValue) -> str:
    """A parameter value as text: ``true``/``false``, an int's digits, a Decimal's plain digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def show_values(values: Mapping[str, ParamValue]) -> dict[str, str]:
    return {name: show_value(value) for name, value in values.items()}


@dataclass(frozen=True, slots=True)
class ParamRange:
    """One searched parameter: its values are ``low, low + step, ...`` up to ``high`` (both reached)."""

    name: str
    kind: Literal["int", "decimal", "bool"]
    low: ParamValue
    high: ParamValue
    step: int | Decimal

    @property
    def count(self) -> int:
        """How many values the range holds."""
        if self.kind == "bool":
            return 2
        return int((Decimal(self.high) - Decimal(self.low)) / Decimal(self.step)) + 1

    def value(self, proposed: Any) -> ParamValue:
        """The parameter value for what Optuna proposed (an int, a decimal's grid index, or a bool)."""
        if self.kind == "bool":
            return bool(proposed)
        if self.kind == "int":
            return int(proposed)
        return Decimal(self.low) + Decimal(self.step) * int(proposed)

    def grid(self) -> list[int] | list[bool]:
        """What the grid sampler walks through for this parameter (see :meth:`value`)."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step)))
        return list(range(self.count))

    def describe(self) -> str:
        if self.kind == "bool":
            return f"{self.name} in {{false, true}}"
        return f"{self.name} {show_value(self.low)}..{show_value(self.high)} step {show_value(self.step)}"


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """What a search varies (``ranges``) and what it holds fixed (``fixed``), for one strategy kind."""

    strategy: type[Strategy]
    fixed: dict[str, ParamValue]
    ranges: tuple[ParamRange, ...]

    @property
    def grid_size(self) -> int:
        """How many combinations the ranges hold (a grid search runs at most that many trials)."""
        return prod(r.count for r in self.ranges)

    def distributions(self) -> dict[str, Any]:
        """Optuna's distribution of each searched parameter (imported here: Optuna loads only when searching)."""
        from optuna.distributions import CategoricalDistribution, IntDistribution

        result: dict[str, Any] = {}
        for r in self.ranges:
            if r.kind == "bool":
                result[r.name] = CategoricalDistribution((False, True))
            elif r.kind == "int":
                result[r.name] = IntDistribution(int(r.low), int(r.high), step=int(r.step))
            else:
                result[r.name] = IntDistribution(0, r.count - 1)
        return result

    def grid(self) -> dict[str, Sequence[int] | Sequence[bool]]:
        """The grid sampler's search space.

        Raises:
            OptimizeError: it holds more than :data:`MAX_GRID` combinations.
        """
        size = self.grid_size
        if size > MAX_GRID:
            raise OptimizeError(
                f"the grid holds {size:,} combinations (at most {MAX_GRID:,}): narrow the ranges or give coarser "
                "steps (NAME=LOW:HIGH:STEP)"
            )
        return {r.name: r.grid() for r in self.ranges}

    def decode(self, proposed: Mapping[str, Any]) -> dict[str, ParamValue]:
        """The trial's parameter values: the fixed ones and the searched ones, in the order they were given."""
        values = dict(self.fixed)
        for r in self.ranges:
            values[r.name] = r.value(proposed[r.name])
        return values


def parse_space(strategy: type[Strategy], specs: Sequence[str]) -> SearchSpace:
    """Parse ``--param`` specs for ``strategy``.

    Raises:
        OptimizeError: a malformed spec, an unknown parameter, a parameter given twice, a range reversed or out of
            the declared bounds, a bad step, or nothing to search (one sentence each).
    """
    fixed: dict[str, ParamValue] = {}
    ranges: list[ParamRange] = []
    seen: set[str] = set()
    for spec in specs:
        name, sep, text = spec.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise OptimizeError(f"--param {spec!r}: {_USAGE}")
        try:
            declared = strategy.param(name)
        except ParamError as exc:
            raise OptimizeError(f"--param {spec!r}: {exc}") from None
        if name in seen:
            raise OptimizeError(f"--param {name} is given twice")
        seen.add(name)
        parts = [part.strip() for part in text.split(":")]
        if len(parts) > 3 or (declared.kind == "bool" and len(parts) > 2):
            raise OptimizeError(f"--param {spec!r}: {_USAGE}")
        try:
            if declared.kind == "bool":
                values = [_bool(name, part) for part in parts]
                if len(values) == 1 or values[0] == values[1]:
                    fixed[name] = values[0]
                else:
                    ranges.append(ParamRange(name, "bool", False, True, 1))
                continue
            ends = [declared.coerce(part) for part in parts[:2]]
        except ParamError as exc:
            raise OptimizeError(f"--param {spec!r}: {exc}") from None
        if len(ends) == 1:
            fixed[name] = ends[0]
            continue
        low, high = ends
        if low > high:
            raise OptimizeError(f"--param {spec!r}: the low end {show_value(low)} is above the high end")
        if low == high:
            fixed[name] = low
            continue
        step = _step(spec, declared.kind, Decimal(low), Decimal(high), parts[2] if len(parts) == 3 else None)
        if declared.kind == "int":
            last = int(low) + (int(high) - int(low)) // int(step) * int(step)
            ranges.append(ParamRange(name, "int", low, last, int(step)))
        else:
            count = int((Decimal(high) - Decimal(low)) / step)
            ranges.append(ParamRange(name, "decimal", low, Decimal(low) + step * count, step))
    if not ranges:
        raise OptimizeError("nothing to search: give at least one --param NAME=LOW:HIGH")
    return SearchSpace(strategy, fixed, tuple(ranges))


def _bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ParamError(f"{name}: expected true or false, got {text!r}")
    return lowered == "true"


def _step(spec: str, kind: str, low: Decimal, high: Decimal, given: str | None) -> Decimal:
    """The step of a range: the given one (checked), else 1 for an int and a power of ten for a decimal."""
    if given is None:
        return Decimal(1) if kind == "int" else Decimal(1).scaleb((high - low).adjusted() - 2)
    try:
        step = Decimal(given) if given.replace(".", "", 1).isdigit() and given.isascii() else None
    except ArithmeticError:
        step = None
    if step is None or step <= 0:
        raise OptimizeError(f"--param {spec!r}: the step {given!r} must be a positive number")
    if kind == "int" and step != step.to_integral_value():
        raise OptimizeError(f"--param {spec!r}: an int parameter steps by a whole number, not {given}")
    if step > high - low:
        raise OptimizeError(f"--param {spec!r}: the step {given} is larger than the range")
    return step
