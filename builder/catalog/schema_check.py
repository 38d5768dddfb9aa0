"""A small JSON Schema checker for the subset our own schemas use.

builder reads untrusted JSON at run time (a bundle's ``manifest.json``, a catalog's
``index.json``) and checks it against the same schema files the tests validate our output with.
Only the keywords those files use are implemented; any other keyword is a bug in builder (the
schema grew without this checker), reported as such rather than silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from builder.errors import InternalError

_IGNORED = frozenset({"$schema", "$id", "title", "description"})
_KNOWN = frozenset({"type", "required", "properties", "additionalProperties", "items", "const",
                    "enum", "pattern", "oneOf", "anyOf", "allOf"})

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "null": (type(None),),
    "boolean": (bool,), "integer": (int,), "number": (int, float),
}


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to JSON
        return name == "boolean"
    return isinstance(value, _TYPES[name])


def _type_name(value: Any) -> str:
    return next((name for name in _TYPES if _is(value, name)), type(value).__name__)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _where(path: str) -> str:
    return path or "(top level)"


def unsupported(schema: Any) -> set[str]:
    """Keywords anywhere in ``schema`` that this checker does not implement."""
    if isinstance(schema, list):
        return set().union(*(unsupported(s) for s in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = set(schema) - _KNOWN - _IGNORED
    for key in ("items", "additionalProperties"):
        found |= unsupported(schema.get(key))
    for key in ("oneOf", "anyOf", "allOf"):
        found |= unsupported(schema.get(key, []))
    for sub in schema.get("properties", {}).values():
        found |= unsupported(sub)
    return found


def problems(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Every way ``value`` breaks ``schema``, as ``key.path: message`` strings."""
    unknown = set(schema) - _KNOWN - _IGNORED
    if unknown:
        raise InternalError(f"schema keyword(s) {sorted(unknown)} not supported by schema_check")
    yield from _combined(value, schema, path)
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in wanted):
            yield f"{_where(path)}: expected {' or '.join(wanted)}, got {_type_name(value)}"
            return
    if "const" in schema and not _same(value, schema["const"]):
        yield f"{_where(path)}: must be {schema['const']!r}, not {value!r}"
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        yield f"{_where(path)}: must be one of {schema['enum']!r}, not {value!r}"
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        yield f"{_where(path)}: {value!r} does not match {schema['pattern']!r}"
    if isinstance(value, dict):
        yield from _object_problems(value, schema, path)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from problems(item, schema["items"], f"{path}[{index}]")


def _combined(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    for sub in schema.get("allOf", ()):
        yield from problems(value, sub, path)
    if "anyOf" in schema and not any(
            not list(problems(value, sub, path)) for sub in schema["anyOf"]):
        yield f"{_where(path)}: matches none of the allowed forms"
    if "oneOf" in schema:
        matching = sum(not list(problems(value, sub, path)) for sub in schema["oneOf"])
        if matching != 1:
            detail = "none" if matching == 0 else f"{matching}, not exactly one,"
            yield f"{_where(path)}: matches {detail} of the allowed forms"


def _object_problems(value: dict[str, Any], schema: Mapping[str, Any],
                     path: str) -> Iterator[str]:
    prefix = f"{path}." if path else ""
    for key in schema.get("required", ()):
        if key not in value:
            yield f"{prefix}{key}: missing"
    properties: Mapping[str, Any] = schema.get("properties", {})
    for key in sorted(value):
        if key in properties:
            yield from problems(value[key], properties[key], f"{prefix}{key}")
        elif schema.get("additionalProperties", True) is False:
            yield f"{prefix}{key}: unexpected key"
        elif isinstance(schema.get("additionalProperties"), dict):
            yield from problems(value[key], schema["additionalProperties"], f"{prefix}{key}")
