"""Read a recipe with tomlkit and validate it into a frozen ``Recipe``.

The per-field rules (types, patterns, enums, bounds, required and unknown keys) live in
``recipe.schema.json``, the file editors are pointed at; this module checks the recipe against
it with ``builder.schema``, words each violation for the TOML key path it is at, and adds in code
only what a schema cannot say: PEP 508 requirements, and the rules that tie one key to another.
Every problem is collected with ``file:line`` and key path, then raised once.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tomlkit.exceptions import KeyAlreadyPresent, ParseError, TOMLKitError

from builder.errors import BuilderError, Problem, ValidationError
from builder.recipe.locate import Locator
from builder.recipe.model import (
    NODE_RUNTIME_DIST,
    Build,
    Checks,
    ImagePython,
    Kernels,
    Node,
    Packages,
    Protocol,
    Recipe,
    Runtime,
    Service,
    ServiceKind,
    Targets,
    Ui,
    UiKind,
)
from builder.recipe.node import Exemption, Link, NodeAppSpec, ProjectScript
from builder.schema import Violation, violations

SCHEMA: Mapping[str, Any] = json.loads(
    files("builder.recipe").joinpath("recipe.schema.json").read_text(encoding="utf-8"))
# Sizes. A recipe is a small hand-written file; it is copied into the bundle's manifest, which
# the agent refuses above 16 MiB (builder.agent.source.MAX_SIDECAR_BYTES): with JSON escaping
# at most 6 bytes per byte, a 1 MiB recipe always fits. These bound the work before the schema
# is checked (app.summary's own, smaller bound comes from the schema).
MAX_RECIPE_BYTES = 1 << 20
MAX_STRING = 4096  # characters of any one string value
MAX_SUMMARY: int = SCHEMA["properties"]["app"]["properties"]["summary"]["maxLength"]
MAX_ITEMS = 4096  # entries of any one array or table


def _type_name(value: Any) -> str:
    """What a TOML value is called in a message (every type TOML has)."""
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table", datetime.datetime: "a date-time",
            datetime.date: "a date", datetime.time: "a time"}[type(value)]


# each JSON type's name in a message, alone and as what an array or a table holds
_NOUNS = {"string": ("a string", "strings"), "integer": ("an integer", "integers"),
          "boolean": ("a boolean", "booleans"), "object": ("a table", "tables"),
          "array": ("an array", "arrays")}


def _describe(schema: Mapping[str, Any]) -> str:
    """What a value of ``schema``'s type is called in a message ("a string", "an array of
    tables"; for an array or table the schema words itself, or a choice of forms, its
    ``x-expected``)."""
    kind = schema.get("type")
    if "x-expected" in schema and kind not in ("string", "integer", "boolean"):
        return str(schema["x-expected"])
    inner = schema.get("items", schema.get("additionalProperties"))
    of = f" of {_NOUNS[inner['type']][1]}" if isinstance(inner, dict) else ""
    return _NOUNS[str(kind)][0] + of


def _message(v: Violation) -> str:  # noqa: PLR0911 (one wording per keyword)
    """``v`` in the recipe's words: what is wrong, as a user would fix it."""
    if v.keyword == "required":
        return f"missing table [{v.path}]" if v.schema.get("type") == "object" \
            else "missing required key"
    if v.keyword == "additionalProperties":
        return f"unknown key (allowed: {', '.join(v.schema['properties'])})"
    if v.keyword in ("type", "oneOf"):
        return f"must be {_describe(v.schema)}, not {_type_name(v.value)}"
    if v.keyword == "enum":
        return f"{v.value!r} is not one of: {', '.join(v.schema['enum'])}"
    if v.keyword == "minItems":
        return f"must be {v.schema['x-expected']}" if "x-expected" in v.schema \
            else "must not be empty"
    if v.keyword == "uniqueItems":
        twice = next(item for index, item in enumerate(v.value) if item in v.value[:index])
        return f"lists {twice!r} twice"
    # pattern, not, const, minimum, maximum, propertyNames: the schema says what is expected
    return f"{v.value!r} is not {v.schema.get('x-expected', 'allowed here')}"


def _schema_problems(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key path, message) for each violation of the schema: the first one per key path."""
    seen: set[str] = set()
    pending = list(violations(data, SCHEMA))
    while pending:
        v = pending.pop(0)
        if v.causes:  # a oneOf whose form fits the value's type: say what is wrong inside it
            pending[:0] = v.causes
            continue
        if v.path not in seen:
            seen.add(v.path)
            yield v.path, _message(v)


def _check_requirement(text: str) -> str | None:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        return f"not a valid PEP 508 requirement: {first}"
    if req.url:
        return "direct URL requirements cannot be locked by hash from an index; name a version"
    return None


def _exact_pin(text: str) -> str | None:
    problem = _check_requirement(text)
    if problem:
        return problem
    req = Requirement(text)
    pins = [spec for spec in req.specifier if spec.operator in ("==", "===")]
    if len(pins) != 1 or "*" in pins[0].version or req.marker is not None:
        return f"{text!r} must pin one exact version (e.g. \"ziglang==0.17.1\")"
    return None


def _canonical_name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return ""


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _strings(table: Mapping[str, Any], key: str) -> list[tuple[int, str]]:
    value = table.get(key)
    items = value if isinstance(value, list) else []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, str)]


def code_problems(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """What the schema cannot say: PEP 508 syntax and the rules across keys."""
    packages, kernels = _table(data, "packages"), _table(data, "kernels")
    for table, where in ((packages, "packages.requirements"), (kernels, "kernels.wheelhouse")):
        for index, text in _strings(table, where.split(".")[1]):
            if problem := _check_requirement(text):
                yield f"{where}[{index}]", problem
    names = [canonicalize_name(n) for _, n in _strings(packages, "allow_sdists")]
    if len(set(names)) != len(names):
        yield "packages.allow_sdists", "lists a project twice"
    yield from _kernel_rules(data, kernels)
    if "service" not in data and _table(data, "checks").get("service") is True:
        yield "checks.service", "the recipe has no [service] to check"
    node = _table(data, "node")
    if "node" in data and isinstance(node.get("toolchain"), str) and \
            (problem := _exact_pin(node["toolchain"])):
        yield "node.toolchain", problem
    if isinstance(data.get("node"), Mapping) and not any(
            _canonical_name(r) == NODE_RUNTIME_DIST for _, r in _strings(packages,
                                                                         "requirements")):
        yield "node", (f"a Node.js app runs on the {NODE_RUNTIME_DIST} wheel: add it to "
                       f'packages.requirements (e.g. "{NODE_RUNTIME_DIST}==24.19.0")')


def _kernel_rules(data: Mapping[str, Any],
                  kernels: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if not isinstance(data.get("kernels"), Mapping):
        return
    if _table(data, "service").get("kind") != ServiceKind.JUPYTER:
        yield "kernels", 'kernels need a Jupyter service ([service] kind = "jupyter")'
    wheelhouse, pythons = kernels.get("wheelhouse"), kernels.get("wheelhouse_pythons")
    if bool(wheelhouse) != bool(pythons):
        yield ("kernels.wheelhouse" if not wheelhouse else "kernels.wheelhouse_pythons",
               "kernels.wheelhouse and kernels.wheelhouse_pythons go together")
    if kernels.get("image_python") == ImagePython.INSTALL and not (wheelhouse and pythons):
        yield "kernels.image_python", ('"install" needs kernels.wheelhouse (e.g. '
                                       '["ipykernel==6.29.5"]) and kernels.wheelhouse_pythons')


def _order(problem: Problem) -> tuple[bool, int, list[Any]]:
    """Line order; on one line, key order with array indices as numbers."""
    if problem.line is None:
        return True, 0, []  # unlocated (missing tables): the order they were found in
    parts = re.split(r"(\d+)", problem.key)
    return False, problem.line, [int(p) if i % 2 else p for i, p in enumerate(parts)]


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


def _recipe(data: Mapping[str, Any], path: str) -> Recipe:
    """The model of a recipe that broke no rule: defaults filled in, collections sorted."""
    app, ui = data["app"], data["app"].get("ui", {})
    runtime, packages, targets = data["runtime"], data["packages"], data["targets"]
    allow = packages.get("allow_sdists", False)
    expose = packages.get("expose")
    table = data.get("checks", {})
    return Recipe(
        path=path, name=app["name"], version=app["version"], summary=app.get("summary", ""),
        ui=Ui(name=ui.get("name") or app["name"], icon=ui.get("icon"),
              kind=UiKind(ui.get("kind", UiKind.WEBAPP)),
              accepted_env=tuple(sorted(set(ui.get("accepted_env", ()))))),
        runtime=Runtime(python=runtime["python"], pbs_release=runtime["pbs_release"],
                        flavor=runtime.get("flavor", "install_only")),
        packages=Packages(
            requirements=tuple(packages["requirements"]),
            index_url=packages.get("index_url", "https://pypi.org/simple"),
            allow_sdists=allow if isinstance(allow, bool)
            else tuple(sorted({canonicalize_name(n) for n in allow})),
            expose=None if expose is None else tuple(expose)),
        targets=Targets(triples=tuple(sorted(targets["triples"])),
                        glibc_floor=targets.get("glibc_floor", "2.17"),
                        glibc_exempt=tuple(sorted(set(targets.get("glibc_exempt", ()))))),
        service=_service(data["service"]) if "service" in data else None,
        kernels=_kernels(data["kernels"]) if "kernels" in data else None,
        node=_node(data["node"]) if "node" in data else None,
        build=Build(steps=tuple(tuple(s) for s in data.get("build", {}).get("steps", ()))),
        checks=Checks(imports=table.get("imports", True),
                      import_skip=tuple(sorted(set(table.get("import_skip", ())))),
                      commands=tuple(tuple(c) for c in table.get("commands", ())),
                      service=table.get("service", True),
                      timeout=table.get("timeout", Checks().timeout)),
    )


def _service(table: Mapping[str, Any]) -> Service:
    return Service(command=tuple(table["command"]),
                   kind=ServiceKind(table.get("kind", ServiceKind.COMMAND)),
                   protocol=Protocol(table.get("protocol", Protocol.HTTP)),
                   port=table.get("port", 8888), url_template=table.get("url_template", "/"),
                   env=tuple(sorted(table.get("env", {}).items())))


def _kernels(table: Mapping[str, Any]) -> Kernels:
    return Kernels(image_python=ImagePython(table.get("image_python", ImagePython.OFFER)),
                   wheelhouse=tuple(table.get("wheelhouse", ())),
                   wheelhouse_pythons=tuple(sorted(table.get("wheelhouse_pythons", ()),
                                                   key=_minor_key)),
                   python3="bundle" if table.get("python3") == "bundle" else "image")


def _node(table: Mapping[str, Any]) -> Node:
    app = NodeAppSpec(
        package=table["package"], version=table["version"],
        nested=tuple(table.get("nested", ())),
        allow_scripts=tuple(sorted(table.get("allow_scripts", {}).items())),
        links=tuple(Link(**item) for item in table.get("links", ())),
        scripts=tuple(ProjectScript(**item) for item in table.get("scripts", ())),
        drop=tuple(table.get("drop", ())), build_headers=tuple(table.get("build_headers", ())),
        exempt=tuple(Exemption(**item) for item in table.get("exempt", ())),
    )
    return Node(app=app, toolchain=table["toolchain"], bin=tuple(sorted(table.get("bin", {})
                                                                        .items())))


def parse_recipe_text(text: str, *, path: str) -> Recipe:
    """Validate recipe text; raise ``ValidationError`` listing every problem."""
    try:
        document = tomlkit.parse(text)
    except ParseError as exc:
        raise ValidationError(
            [Problem(path=path, line=exc.line, key="", message=f"TOML syntax error: {exc}")]
        ) from None
    except KeyAlreadyPresent as exc:  # a key given twice in one table: tomlkit has no line
        raise ValidationError(
            [Problem(path=path, line=duplicate_key_line(text), key="",
                     message=f"TOML syntax error: {exc} (each key may appear once per table)")]
        ) from None
    except TOMLKitError as exc:  # e.g. "Redefinition of an existing table": no line either
        raise ValidationError(
            [Problem(path=path, line=duplicate_key_line(text), key="",
                     message=f"TOML syntax error: {exc}")]
        ) from None
    locator = Locator(text)
    oversized = _oversized(document, path, locator)
    if oversized:
        raise ValidationError(oversized, hint="shorten these values and run the command again")
    data: dict[str, Any] = document.unwrap()
    found = dict(_schema_problems(data))
    for key, message in code_problems(data):
        found.setdefault(key, message)  # one problem per key: the schema's comes first
    if found:
        problems = [Problem(path=path, line=locator.line_of(key), key=key, message=message)
                    for key, message in found.items()]
        raise ValidationError(sorted(problems, key=_order),
                              hint="fix the recipe and run the command again")
    return _recipe(data, path)


_KEY_LINE = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*=""")
_TABLE_LINE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def duplicate_key_line(text: str) -> int | None:
    """The line where a key is given a second time in the same table, or where a table header
    names a key already given (``env = "1"``, then ``[service.env]``) or a table a dotted key
    made (``env.A = "1"``, then ``[service.env]``). A best effort: None when the scan cannot
    tell, e.g. inside a multi-line string."""
    seen: set[tuple[str, str]] = set()
    dotted: set[str] = set()  # tables made by dotted keys ("service.env" from env.A = ...)
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE_LINE.match(line):
            name = header.group(1)
            if line.lstrip().startswith("[["):
                table = f"{name}#{number}"
                continue
            parent, _dot, last = name.rpartition(".")
            if (parent, last) in seen or name in dotted:
                return number
            table = name
            continue
        if match := _KEY_LINE.match(line):
            name = next(g for g in match.groups() if g is not None)
            scope = table
            if match.group(3) is not None and "." in name:  # a bare dotted key: a.b = 1
                made, _dot, name = name.rpartition(".")
                scope = f"{table}.{made}" if table else made
                dotted.add(scope)
            key = (scope, name)
            if key in seen:
                return number
            seen.add(key)
    return None


def _oversized(document: Any, path: str, locator: Locator, prefix: str = "") -> list[Problem]:
    """Every string, array or table of the document larger than the recipe allows."""
    problems: list[Problem] = []

    def add(key: str, message: str) -> None:
        problems.append(Problem(path=path, line=locator.line_of(key), key=key, message=message))

    def walk(value: Any, key: str) -> None:
        if isinstance(value, str):
            limit = MAX_SUMMARY if key == "app.summary" else MAX_STRING
            if len(value) > limit:
                add(key, f"too long: {len(value)} characters (at most {limit})")
        elif isinstance(value, Mapping):
            if len(value) > MAX_ITEMS:
                add(key, f"too many keys: {len(value)} (at most {MAX_ITEMS})")
                return
            for name, item in value.items():
                if len(str(name)) > MAX_STRING:
                    add(key, f"a key is too long: {len(str(name))} characters (at most "
                        f"{MAX_STRING})")
                    continue
                walk(item, f"{key}.{name}" if key else str(name))
        elif isinstance(value, list):
            if len(value) > MAX_ITEMS:
                add(key, f"too many entries: {len(value)} (at most {MAX_ITEMS})")
                return
            for index, item in enumerate(value):
                walk(item, f"{key}[{index}]")

    walk(document, prefix)
    return problems


def load_recipe(path: Path) -> Recipe:
    """Read and validate the recipe at ``path``: a regular file of at most 1 MiB of UTF-8
    (a FIFO, a device or a directory is refused before anything is read)."""
    hint = "pass the path of a recipe TOML file, e.g. recipes/jupyter-6.toml"
    try:
        if not path.exists():
            raise BuilderError("recipe not found", where=str(path), hint=hint)
        if not path.is_file():
            raise BuilderError("recipe is not a regular file (a directory, FIFO or device)",
                               where=str(path), hint=hint)
        with path.open("rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
    except OSError as exc:
        raise BuilderError(f"cannot read recipe: {exc.strerror or exc}", where=str(path),
                           hint=hint) from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise BuilderError(f"recipe larger than {MAX_RECIPE_BYTES >> 20} MiB", where=str(path),
                           hint="a recipe is a small hand-written file; check the path")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BuilderError(f"recipe is not UTF-8 text: {exc}", where=str(path),
                           hint=hint) from None
    return parse_recipe_text(text, path=str(path))
