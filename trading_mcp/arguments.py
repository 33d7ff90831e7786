"""Strict tool arguments, refused in one plain sentence.

The SDK derives each tool's argument model from the function's signature (``Tool.from_function`` →
``func_metadata`` → a subclass of ``ArgModelBase``) and validates it in pydantic's lax mode: ``-0.0`` passes as
``false``, ``5.0`` and ``true`` as integers, unknown keys are dropped without a word, and a failure comes back as
pydantic's multi-line dump ending in a link. Here every tool's model is replaced by a strict twin
(``strict=True``: a JSON value counts only as the JSON type declared, except that a JSON integer is a fine
number; ``extra="forbid"``: an unknown key is an error), so the SDK itself refuses, and the advertised input schema
says ``additionalProperties: false``. The SDK's habit of parsing a JSON object sent as a string (Claude Desktop
does that) is kept: it happens before validation, in ``FuncMetadata.pre_parse_json``.

:func:`refusal` turns the refused call back into one sentence naming the argument, the rule and that nothing
changed; the server's middleware puts it in place of the SDK's text (the SDK's result envelope is kept).

Numbers a client may send as strings (strategy parameters, risk limits) are :data:`ScalarValue`: a JSON number,
``true``/``false``, or a plain ASCII decimal literal (:data:`DECIMAL_TEXT`). Python's ``Decimal`` and ``int`` also
read ``" 5 "``, ``"٥"``, ``"５"``, ``"1_000"``, ``"1e3"`` and ``"NaN"``; those are refused here, before anything
reaches the engine.
"""

import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, cast

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import ConfigDict, PlainValidator, StringConstraints, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = ["DECIMAL_TEXT", "MAX_TEXT_VALUE", "Scalar", "ScalarValue", "refusal", "strict_tool", "untitled"]

DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
"""A plain decimal literal: optional ``-``, ASCII digits, optionally ``.`` and ASCII digits (``fullmatch`` it)."""
MAX_TEXT_VALUE = 64
_DECIMAL_RULE = (
    "a plain decimal number such as 12 or -0.5 (ASCII digits, an optional leading '-' and one '.'; "
    "no spaces, exponents, underscores, NaN or Infinity)"
)
_MAX_PROBLEMS = 3

Scalar = str | int | float | bool


def _scalar(value: object) -> Scalar:
    """A JSON scalar as the engine may take it; see the module docstring for the string rule."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise PydanticCustomError("finite_number", "must be a finite number")
    if isinstance(value, str):
        if len(value) <= MAX_TEXT_VALUE and DECIMAL_TEXT.fullmatch(value):
            return value
        raise PydanticCustomError(
            "decimal_text", "must be {rule}, not {got}", {"rule": _DECIMAL_RULE, "got": ascii(value[:24])}
        )
    raise PydanticCustomError("scalar_type", "must be a number, a decimal number in a string, or true or false")


ScalarValue = Annotated[
    Scalar,
    PlainValidator(
        _scalar,
        json_schema_input_type=Annotated[
            str, StringConstraints(pattern=rf"^{DECIMAL_TEXT.pattern}$", max_length=MAX_TEXT_VALUE)
        ]
        | int
        | float
        | bool,
    ),
]
"""A number, a boolean, or a number written as a plain ASCII decimal string."""

_STRICT = ConfigDict(strict=True, extra="forbid")


_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def untitled(schema: Any) -> Any:
    """``schema`` without pydantic's generated ``title`` annotations ("Pair" for the field ``pair``, the model's
    class name): they repeat a name the schema already holds, and a model reads every character of the tool list.
    A property *named* ``title`` stays."""
    if isinstance(schema, list):
        return [untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: {name: untitled(sub) for name, sub in value.items()}
        if key in _NAMED_SCHEMAS and isinstance(value, dict)
        else untitled(value)
        for key, value in schema.items()
        if not (key == "title" and isinstance(value, str))
    }


def strict_tool(tool: Tool) -> Tool:
    """``tool`` with a strict, closed argument model (and the input schema that says so); its input and output
    schemas without generated titles (:func:`untitled`: results are still validated by the output model)."""
    lax = tool.fn_metadata.arg_model
    strict = cast(
        type[ArgModelBase], type(lax.__name__, (lax,), {"model_config": _STRICT, "__module__": lax.__module__})
    )
    output = tool.fn_metadata.output_schema
    metadata = tool.fn_metadata.model_copy(
        update={"arg_model": strict, "output_schema": untitled(output) if output is not None else None}
    )
    parameters = untitled(strict.model_json_schema(by_alias=True))
    return tool.model_copy(update={"fn_metadata": metadata, "parameters": parameters})


def refusal(tool: Tool, arguments: Mapping[str, Any]) -> str | None:
    """The sentence that refuses ``arguments`` for ``tool``, or None when the tool's model accepts them.

    Validates exactly as the SDK does for a call (its JSON pre-parse, then the model), so a call the SDK refused
    for its arguments gets a sentence here and any other call gets None.
    """
    try:
        tool.fn_metadata.validate_arguments(dict(arguments))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    else:
        return None
    fields = tool.fn_metadata.arg_model.model_fields
    known = [info.alias or name for name, info in fields.items()]
    problems: list[str] = []
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
    if unknown:
        listing = f"known: {', '.join(known)}" if known else "this tool takes no arguments"
        names = ", ".join(_quote(name) for name in unknown[:_MAX_PROBLEMS])
        problems.append(f"unknown argument{'s' if len(unknown) > 1 else ''} {names} ({listing})")
    problems.extend(_describe(e) for e in errors if e["type"] != "extra_forbidden")
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    more = f"; and {len(problems) - _MAX_PROBLEMS} more" if len(problems) > _MAX_PROBLEMS else ""
    return f"Invalid arguments for {tool.name}, nothing was changed: {shown}{more}."


def _quote(text: str) -> str:
    """Client-chosen text, short and printable (``ascii`` escapes anything that could hide or mislead)."""
    return ascii(text if len(text) <= 40 else text[:40] + "...")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return "another kind of value"


_TYPE_RULES = {
    "bool_type": "must be true or false",
    "int_type": "must be a whole number (a JSON integer)",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "list_type": "must be a list",
}


def _describe(error: ErrorDetails) -> str:
    where = _quote(".".join(str(part) for part in error["loc"])) if error["loc"] else "the arguments"
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _TYPE_RULES:
        return f"{where} {_TYPE_RULES[kind]}, not {_json_kind(error.get('input'))}"
    if kind == "missing":
        return f"{where} is required"
    if kind == "string_too_short":
        size = ctx.get("min_length")
        return f"{where} must not be empty" if size == 1 else f"{where} must have at least {size} characters"
    if kind == "string_too_long":
        return f"{where} must have at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"{where} must have at most {ctx.get('max_length')} entries"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"{where} must be {words} {ctx.get(key)}"
    if kind == "literal_error":
        return f"{where} must be {ctx.get('expected')}"
    message = error["msg"]
    if message.startswith("must "):  # our own validators word their rule for this sentence
        return f"{where} {message}"
    return f"{where} is invalid ({message[:1].lower()}{message[1:]})"
