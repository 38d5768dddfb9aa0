"""A small JSON Schema checker for the subset our own schemas use.

builder reads untrusted input (a recipe, a bundle's ``manifest.json``, a catalog's
``index.json``) and checks it against the same schema files the tests validate our output with
and editors are pointed at. Only the keywords those files use are implemented, with draft
2020-12 meaning; any other keyword is a bug in builder (the schema grew without this checker),
reported as such rather than silently ignored.

``violations`` gives each failure as data (key path, keyword, the failing subschema, the value)
so a caller can word it for its users (builder.recipe.parse does); ``problems`` words them
generically as ``key.path: message``. Besides the annotations of the standard, the schemas may
carry ``x-expected``: a noun phrase for what a valid value is ("a Python minor version like
\"3.11\""), which callers use in their messages; this checker ignores it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from builder.errors import InternalError

_IGNORED = frozenset({"$schema", "$id", "title", "description", "x-expected"})
_KNOWN = frozenset({"type", "required", "properties", "additionalProperties", "items",
                    "prefixItems", "const", "enum", "pattern", "oneOf", "anyOf", "allOf", "not",
                    "minimum", "maximum", "minLength", "maxLength", "minItems", "uniqueItems",
                    "propertyNames"})

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "null": (type(None),),
    "boolean": (bool,), "integer": (int,), "number": (int, float),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One failed keyword. ``path`` is the key path (``a.b[2].c``; ``""`` for the top level);
    ``schema`` the subschema holding the keyword (for ``required``: the missing property's own
    subschema; for ``additionalProperties: false``: the enclosing object's); ``value`` the value
    at ``path`` (for ``propertyNames``: the key). For a ``oneOf``/``anyOf`` that no form
    matches, ``causes`` are the failures inside the one form whose type fits the value, if
    exactly one does."""

    path: str
    keyword: str
    schema: Mapping[str, Any]
    value: Any
    causes: tuple[Violation, ...] = ()


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
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
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
    for key in ("items", "additionalProperties", "not", "propertyNames"):
        found |= unsupported(schema.get(key))
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        found |= unsupported(schema.get(key, []))
    for sub in schema.get("properties", {}).values():
        found |= unsupported(sub)
    return found


def violations(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[Violation]:
    """Every way ``value`` breaks ``schema``, in schema order (object keys sorted)."""
    unknown = set(schema) - _KNOWN - _IGNORED
    if unknown:
        raise InternalError(f"schema keyword(s) {sorted(unknown)} not supported by builder.schema")

    def failed(keyword: str) -> Violation:
        return Violation(path=path, keyword=keyword, schema=schema, value=value)

    yield from _combined(value, schema, path)
    if "not" in schema and not any(violations(value, schema["not"], path)):
        yield failed("not")
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in wanted):
            yield failed("type")
            return
    if "const" in schema and not _same(value, schema["const"]):
        yield failed("const")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        yield failed("enum")
    if isinstance(value, str):
        yield from (failed(k) for k in _string_failures(value, schema))
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            yield failed("minimum")
        if "maximum" in schema and value > schema["maximum"]:
            yield failed("maximum")
    if isinstance(value, dict):
        yield from _object_violations(value, schema, path)
    if isinstance(value, list):
        yield from _array_violations(value, schema, path)


def _string_failures(value: str, schema: Mapping[str, Any]) -> Iterator[str]:
    if "pattern" in schema and not re.search(schema["pattern"], value):
        yield "pattern"
    if "minLength" in schema and len(value) < schema["minLength"]:
        yield "minLength"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        yield "maxLength"


def _fitting_form(value: Any, forms: list[Mapping[str, Any]], path: str) -> tuple[Violation, ...]:
    fitting = [f for f in forms if "type" in f and _is(value, f["type"])]
    return tuple(violations(value, fitting[0], path)) if len(fitting) == 1 else ()


def _combined(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[Violation]:
    for sub in schema.get("allOf", ()):
        yield from violations(value, sub, path)
    for keyword in ("anyOf", "oneOf"):
        if keyword not in schema:
            continue
        matching = sum(not any(violations(value, sub, path)) for sub in schema[keyword])
        if matching == 0 or (keyword == "oneOf" and matching > 1):
            causes = _fitting_form(value, schema[keyword], path) if matching == 0 else ()
            yield Violation(path=path, keyword=keyword, schema=schema, value=value,
                            causes=causes)


def _array_violations(value: list[Any], schema: Mapping[str, Any],
                      path: str) -> Iterator[Violation]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        yield Violation(path=path, keyword="minItems", schema=schema, value=value)
    if schema.get("uniqueItems") and any(
            _same(a, b) for i, a in enumerate(value) for b in value[:i]):
        yield Violation(path=path, keyword="uniqueItems", schema=schema, value=value)
    prefix: list[Mapping[str, Any]] = schema.get("prefixItems", [])
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else schema.get("items")
        if sub is not None:
            yield from violations(item, sub, f"{path}[{index}]")


def _object_violations(value: dict[str, Any], schema: Mapping[str, Any],
                       path: str) -> Iterator[Violation]:
    prefix = f"{path}." if path else ""
    properties: Mapping[str, Any] = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            yield Violation(path=f"{prefix}{key}", keyword="required",
                            schema=properties.get(key, {}), value=None)
    extra = schema.get("additionalProperties", True)
    for key in sorted(value):
        if "propertyNames" in schema and any(
                violations(key, schema["propertyNames"], f"{prefix}{key}")):
            yield Violation(path=f"{prefix}{key}", keyword="propertyNames",
                            schema=schema["propertyNames"], value=key)
        if key in properties:
            yield from violations(value[key], properties[key], f"{prefix}{key}")
        elif extra is False:
            yield Violation(path=f"{prefix}{key}", keyword="additionalProperties",
                            schema=schema, value=value[key])
        elif isinstance(extra, dict):
            yield from violations(value[key], extra, f"{prefix}{key}")


def _generic(v: Violation) -> str:  # noqa: PLR0911 (one message per keyword)
    where, s = _where(v.path), v.schema
    if v.keyword == "type":
        wanted = s["type"] if isinstance(s["type"], list) else [s["type"]]
        return f"{where}: expected {' or '.join(wanted)}, got {_type_name(v.value)}"
    if v.keyword == "required":
        return f"{where}: missing"
    if v.keyword == "additionalProperties":
        return f"{where}: unexpected key"
    if v.keyword == "const":
        return f"{where}: must be {s['const']!r}, not {v.value!r}"
    if v.keyword == "enum":
        return f"{where}: must be one of {s['enum']!r}, not {v.value!r}"
    if v.keyword == "pattern":
        return f"{where}: {v.value!r} does not match {s['pattern']!r}"
    if v.keyword in ("anyOf", "oneOf"):
        matching = _matching(v)
        detail = "none" if matching == 0 else f"{matching}, not exactly one,"
        return f"{where}: matches {detail} of the allowed forms"
    bounds = {"minimum": "less than", "maximum": "more than", "minLength": "shorter than",
              "maxLength": "longer than", "minItems": "fewer items than"}
    if v.keyword in bounds:
        return f"{where}: {v.value!r} is {bounds[v.keyword]} {s[v.keyword]!r}"
    return f"{where}: fails {v.keyword!r}"


def _matching(v: Violation) -> int:
    return sum(not any(violations(v.value, sub, v.path)) for sub in v.schema[v.keyword])


def problems(value: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Every way ``value`` breaks ``schema``, as ``key.path: message`` strings."""
    for violation in violations(value, schema, path):
        yield _generic(violation)
