"""Read a recipe with tomlkit and validate it into a frozen ``Recipe``.

Every problem is collected with ``file:line`` and key path, then raised once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tomlkit.exceptions import KeyAlreadyPresent, ParseError, TOMLKitError

from builder.errors import BuilderError, InternalError, Problem, ValidationError
from builder.recipe.locate import Locator
from builder.recipe.model import (
    KNOWN_TRIPLES,
    NODE_RUNTIME_DIST,
    PBS_FLAVORS,
    RECIPE_FORMAT_VERSION,
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

T = TypeVar("T")

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
MINOR_RE = re.compile(r"^3\.(\d{1,2})$")
RELEASE_RE = re.compile(r"^\d{8}$")
GLIBC_RE = re.compile(r"^2\.(\d{1,2})$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ICON_RE = re.compile(r"^[^/\x00][^\x00]*\.png$")  # relative to the recipe's directory
SCRIPT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
PROJECT_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
MAX_CHECK_TIMEOUT = 3600
# Sizes. A recipe is a small hand-written file; it is copied into the bundle's manifest, which
# the agent refuses above 16 MiB (builder.agent.source.MAX_SIDECAR_BYTES): with JSON escaping
# at most 6 bytes per byte, a 1 MiB recipe always fits.
MAX_RECIPE_BYTES = 1 << 20
MAX_STRING = 4096  # characters of any one string value
MAX_SUMMARY = 1024  # characters of app.summary (one paragraph)
MAX_ITEMS = 4096  # entries of any one array or table

# table -> allowed keys (a closed set: typos are reported, not ignored)
SCHEMA_KEYS: dict[str, tuple[str, ...]] = {
    "": ("format_version", "app", "runtime", "packages", "targets", "service", "kernels",
         "node", "build", "checks"),
    "app": ("name", "version", "summary", "ui"),
    "app.ui": ("name", "icon", "kind", "accepted_env"),
    "runtime": ("python", "pbs_release", "flavor"),
    "packages": ("requirements", "index_url", "allow_sdists", "expose"),
    "targets": ("triples", "glibc_floor", "glibc_exempt"),
    "service": ("command", "kind", "protocol", "port", "url_template", "env"),
    "kernels": ("image_python", "python3", "wheelhouse", "wheelhouse_pythons"),
    "build": ("steps",),
    "checks": ("imports", "import_skip", "commands", "service", "timeout"),
    "node": ("package", "version", "toolchain", "bin", "nested", "allow_scripts", "links",
             "scripts", "drop", "build_headers", "exempt"),
}
# the keys of each table in an array of tables under [node]
NODE_ITEM_KEYS = {"links": ("path", "target"), "scripts": ("project", "script"),
                  "exempt": ("pattern", "reason")}
REQUIRED_TABLES = ("app", "runtime", "packages", "targets")
MIN_GLIBC_MINOR = 17  # python-build-standalone's own floor (manylinux2014)


class _Checker:
    def __init__(self, path: str, locator: Locator) -> None:
        self.path = path
        self.locator = locator
        self.problems: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(
            Problem(path=self.path, line=self.locator.line_of(key), key=key, message=message)
        )

    def table(
        self, data: Mapping[str, Any], key: str, *, required: bool
    ) -> Mapping[str, Any] | None:
        """The table at ``key``; None (and its keys go unchecked) when it is absent or wrong."""
        value = _get(data, key)
        if value is None:
            if required:
                self.add(key, f"missing table [{key}]")
            return None
        if not isinstance(value, Mapping):
            self.add(key, f"must be a table, not {_type_name(value)}")
            return None
        allowed = SCHEMA_KEYS.get(key, ())
        for extra in sorted(set(value) - set(allowed)):
            self.add(f"{key}.{extra}", f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def field(
        self,
        data: Mapping[str, Any] | None,
        table: str,
        name: str,
        kind: type[T],
        *,
        default: T | None = None,
        required: bool = True,
        check: Callable[[T], str | None] | None = None,
    ) -> T | None:
        key = f"{table}.{name}" if table else name
        if data is None:
            return default
        if name not in data:
            if required and default is None:
                self.add(key, "missing required key")
            return default
        value = data[name]
        if kind is int and isinstance(value, bool):
            self.add(key, f"must be an integer, not {_type_name(value)}")
            return default
        if not isinstance(value, kind):
            self.add(key, f"must be {_article(kind)}, not {_type_name(value)}")
            return default
        plain = _plain(value)
        if check is not None:
            message = check(plain)
            if message:
                self.add(key, message)
                return default
        return plain  # type: ignore[no-any-return]

    def strings(
        self,
        data: Mapping[str, Any] | None,
        table: str,
        name: str,
        *,
        required: bool,
        item_check: Callable[[str], str | None] | None = None,
        non_empty: bool = False,
    ) -> tuple[str, ...] | None:
        key = f"{table}.{name}"
        if data is None:
            return None
        if name not in data:
            if required:
                self.add(key, "missing required key")
            return None
        value = data[name]
        if not isinstance(value, list):
            self.add(key, f"must be an array of strings, not {_type_name(value)}")
            return None
        if non_empty and not value:
            self.add(key, "must not be empty")
        result: list[str] = []
        ok = True
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.add(f"{key}[{index}]", f"must be a string, not {_type_name(item)}")
                ok = False
                continue
            message = item_check(str(item)) if item_check else None
            if message:
                self.add(f"{key}[{index}]", message)
                ok = False
            result.append(str(item))
        return tuple(result) if ok else None


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    current: Any = data
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _type_name(value: Any) -> str:
    value = _plain(value)
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _article(kind: type) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string"}.get(kind, kind.__name__)


def _check_requirement(text: str) -> str | None:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        return f"not a valid PEP 508 requirement: {first}"
    if req.url:
        return "direct URL requirements cannot be locked by hash from an index; name a version"
    return None


def _one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in options else f"{value!r} is not one of: {', '.join(options)}"

    return check


def _matches(pattern: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.match(value) else f"{value!r} is not {what}"

    return check


def _check_glibc(value: str) -> str | None:
    match = GLIBC_RE.match(value)
    if not match:
        return f"{value!r} is not a glibc version like \"2.17\""
    if int(match.group(1)) < MIN_GLIBC_MINOR:
        return f"{value!r} is below 2.{MIN_GLIBC_MINOR}, the floor of python-build-standalone"
    return None


def _app(c: _Checker, data: Mapping[str, Any]) -> tuple[str, str, str, Ui] | None:
    app = c.table(data, "app", required=True)
    name = c.field(app, "app", "name", str,
                   check=_matches(NAME_RE, "a lowercase name of [a-z0-9._-] (it becomes "
                                  "/opt/apps/<name>)"))
    version = c.field(app, "app", "version", str, check=_matches(VERSION_RE, "a version"))
    summary = c.field(app, "app", "summary", str, default="", required=False)
    ui_table = c.table(data, "app.ui", required=False) if app is not None else {}
    ui_name = c.field(ui_table, "app.ui", "name", str, default=name or "", required=False)
    icon = c.field(ui_table, "app.ui", "icon", str, required=False,
                   check=_matches(ICON_RE, "a PNG file's path relative to the recipe "
                                  "(e.g. \"icons/app.png\", 128x128)"))
    kind = c.field(ui_table, "app.ui", "kind", str, default="webapp", required=False,
                   check=_one_of(tuple(k.value for k in UiKind)))
    accepted_env = c.strings(ui_table, "app.ui", "accepted_env", required=False,
                             item_check=_matches(ENV_RE, "an environment variable name"))
    if name is None or version is None or kind is None:
        return None
    ui = Ui(name=ui_name or name, icon=icon, kind=UiKind(kind),
            accepted_env=tuple(sorted(set(accepted_env or ()))))
    return name, version, summary or "", ui


def _runtime(c: _Checker, data: Mapping[str, Any]) -> Runtime | None:
    runtime = c.table(data, "runtime", required=True)
    python = c.field(runtime, "runtime", "python", str,
                     check=_matches(MINOR_RE, 'a Python minor version like "3.11"'))
    release = c.field(runtime, "runtime", "pbs_release", str,
                      check=_matches(RELEASE_RE, 'a python-build-standalone release tag like '
                                     '"20240107"'))
    flavor = c.field(runtime, "runtime", "flavor", str, default="install_only", required=False,
                     check=_one_of(PBS_FLAVORS))
    if python is None or release is None or flavor is None:
        return None
    return Runtime(python=python, pbs_release=release, flavor=flavor)


def _packages(c: _Checker, data: Mapping[str, Any]) -> Packages | None:
    packages = c.table(data, "packages", required=True)
    requirements = c.strings(packages, "packages", "requirements", required=True,
                             item_check=_check_requirement, non_empty=True)
    index_url = c.field(packages, "packages", "index_url", str,
                        default="https://pypi.org/simple", required=False,
                        check=_matches(re.compile(r"^(https?|file)://\S+$"), "an index URL"))
    allow_sdists = _allow_sdists(c, packages)
    expose = c.strings(packages, "packages", "expose", required=False,
                       item_check=_matches(SCRIPT_RE, "a console script name"))
    if requirements is None or index_url is None or allow_sdists is None:
        return None
    return Packages(requirements=requirements, index_url=index_url, allow_sdists=allow_sdists,
                    expose=expose)


def _allow_sdists(c: _Checker, packages: Mapping[str, Any] | None) -> bool | tuple[str, ...] | None:
    """``true``/``false``, or the names of the projects that may be built from source."""
    if packages is None or "allow_sdists" not in packages:
        return False
    value = _plain(packages["allow_sdists"])
    if isinstance(value, bool):
        return value
    if not isinstance(value, list):
        c.add("packages.allow_sdists", "must be true, false or an array of project names, not "
              f"{_type_name(value)}")
        return None
    names = c.strings(packages, "packages", "allow_sdists", required=False, non_empty=True,
                      item_check=_matches(PROJECT_RE, "a project name"))
    if names is None:
        return None
    canonical = [canonicalize_name(n) for n in names]
    if len(set(canonical)) != len(canonical):
        c.add("packages.allow_sdists", "lists a project twice")
    return tuple(sorted(set(canonical)))


def _commands(c: _Checker, table: Mapping[str, Any], key: str) -> tuple[tuple[str, ...], ...]:
    """An array of commands, each an array of strings (argv; no shell): ``[["a", "b"], ...]``."""
    value = _plain(table.get(key.rsplit(".", 1)[1], []))
    if not isinstance(value, list):
        c.add(key, f"must be an array of commands (arrays of strings), not {_type_name(value)}")
        return ()
    commands = []
    for index, argv in enumerate(value):
        at = f"{key}[{index}]"
        if not isinstance(argv, list) or not argv:
            c.add(at, "must be a non-empty array of strings (the command and its arguments, "
                  'e.g. ["jupyter", "nbextension", "enable", "--sys-prefix", "--py", "x"])')
            continue
        bad = [i for i, arg in enumerate(argv) if not isinstance(arg, str)]
        if bad:
            c.add(f"{at}[{bad[0]}]", f"must be a string, not {_type_name(argv[bad[0]])}")
            continue
        program = str(argv[0])
        if not program.strip() or program.startswith("/") or ".." in program.split("/"):
            c.add(f"{at}[0]", f"{program!r} must be a command on the bundle's PATH or a path "
                  "inside the app (relative, no '..')")
            continue
        if any("\0" in str(arg) for arg in argv):
            c.add(at, "must not contain NUL characters")
            continue
        commands.append(tuple(str(arg) for arg in argv))
    return tuple(commands)


def _build(c: _Checker, data: Mapping[str, Any]) -> Build:
    table = c.table(data, "build", required=False)
    if table is None:
        return Build()
    return Build(steps=_commands(c, table, "build.steps"))


def _checks(c: _Checker, data: Mapping[str, Any], service: Service | None) -> Checks:
    table = c.table(data, "checks", required=False)
    if table is None:
        return Checks()
    imports = c.field(table, "checks", "imports", bool, default=True, required=False)
    skip = c.strings(table, "checks", "import_skip", required=False,
                     item_check=_matches(MODULE_RE, "a module name"))
    serve = c.field(table, "checks", "service", bool, default=True, required=False)
    if table.get("service") is True and service is None:
        c.add("checks.service", "the recipe has no [service] to check")
    timeout = c.field(table, "checks", "timeout", int, default=Checks().timeout, required=False,
                      check=lambda t: None if 1 <= t <= MAX_CHECK_TIMEOUT
                      else f"{t} is not between 1 and {MAX_CHECK_TIMEOUT} seconds")
    return Checks(imports=bool(imports), import_skip=tuple(sorted(set(skip or ()))),
                  commands=_commands(c, table, "checks.commands"), service=bool(serve),
                  timeout=timeout or Checks().timeout)


def _targets(c: _Checker, data: Mapping[str, Any]) -> Targets | None:
    targets = c.table(data, "targets", required=True)
    triples = c.strings(targets, "targets", "triples", required=True,
                        item_check=_one_of(KNOWN_TRIPLES), non_empty=True)
    if triples and len(set(triples)) != len(triples):
        c.add("targets.triples", "lists a target twice")
    glibc_floor = c.field(targets, "targets", "glibc_floor", str, default="2.17",
                          required=False, check=_check_glibc)
    glibc_exempt = c.strings(targets, "targets", "glibc_exempt", required=False,
                             item_check=lambda p: None if p.strip() else "must not be empty")
    if triples is None or glibc_floor is None:
        return None
    return Targets(triples=tuple(sorted(triples)), glibc_floor=glibc_floor,
                   glibc_exempt=tuple(sorted(set(glibc_exempt or ()))))


def _env(c: _Checker, value: Any) -> tuple[tuple[str, str], ...]:
    env: list[tuple[str, str]] = []
    if not isinstance(value, Mapping):
        c.add("service.env", f"must be a table of strings, not {_type_name(value)}")
        return ()
    for key, item in value.items():
        if not ENV_RE.match(str(key)):
            c.add(f"service.env.{key}", "is not an environment variable name")
        elif not isinstance(item, str):
            c.add(f"service.env.{key}", f"must be a string, not {_type_name(item)}")
        else:
            env.append((str(key), str(item)))
    return tuple(sorted(env))


def _service(c: _Checker, data: Mapping[str, Any]) -> Service | None:
    table = c.table(data, "service", required=False)
    if table is None:
        return None
    command = c.strings(table, "service", "command", required=True, non_empty=True,
                        item_check=lambda a: None if a.strip() else "must not be empty")
    if command and (command[0].startswith("/") or ".." in command[0].split("/")):
        c.add("service.command[0]", f"{command[0]!r} must be a path inside the app (relative "
              "to /opt/apps/<name>, e.g. bin/jupyter-notebook)")
        command = None
    kind = c.field(table, "service", "kind", str, default="command", required=False,
                   check=_one_of(tuple(k.value for k in ServiceKind)))
    protocol = c.field(table, "service", "protocol", str, default="http", required=False,
                       check=_one_of(tuple(p.value for p in Protocol)))
    port = c.field(table, "service", "port", int, default=8888, required=False,
                   check=lambda p: None if 1 <= p <= 65535 else f"{p} is not a TCP port")
    url_template = c.field(table, "service", "url_template", str, default="/", required=False)
    env = _env(c, table.get("env", {}))
    if not command or kind is None or protocol is None or port is None or url_template is None:
        return None
    return Service(command=command, kind=ServiceKind(kind), protocol=Protocol(protocol),
                   port=port, url_template=url_template, env=env)


def _kernels(c: _Checker, data: Mapping[str, Any], service: Service | None) -> Kernels | None:
    table = c.table(data, "kernels", required=False)
    if table is None:
        return None
    if "service" not in data or (service is not None and service.kind is not ServiceKind.JUPYTER):
        c.add("kernels", 'kernels need a Jupyter service ([service] kind = "jupyter")')
    image_python = c.field(table, "kernels", "image_python", str, default="offer",
                           required=False, check=_one_of(tuple(p.value for p in ImagePython)))
    wheelhouse = c.strings(table, "kernels", "wheelhouse", required=False,
                           item_check=_check_requirement)
    pythons = c.strings(table, "kernels", "wheelhouse_pythons", required=False,
                        item_check=_matches(MINOR_RE, 'a Python minor version like "3.12"'))
    if pythons and len(set(pythons)) != len(pythons):
        c.add("kernels.wheelhouse_pythons", "lists a version twice")
    if bool(table.get("wheelhouse")) != bool(table.get("wheelhouse_pythons")):
        c.add("kernels.wheelhouse" if not wheelhouse else "kernels.wheelhouse_pythons",
              "kernels.wheelhouse and kernels.wheelhouse_pythons go together")
    if image_python == ImagePython.INSTALL and not (wheelhouse and pythons):
        c.add("kernels.image_python", '"install" needs kernels.wheelhouse (e.g. '
              '["ipykernel==6.29.5"]) and kernels.wheelhouse_pythons')
    python3 = c.field(table, "kernels", "python3", str, default="image", required=False,
                      check=_one_of(("image", "bundle")))
    if image_python is None or python3 not in ("image", "bundle"):
        return None
    return Kernels(image_python=ImagePython(image_python), wheelhouse=wheelhouse or (),
                   wheelhouse_pythons=tuple(sorted(pythons or (), key=_minor_key)),
                   python3="image" if python3 == "image" else "bundle")


def _exact_pin(text: str) -> str | None:
    problem = _check_requirement(text)
    if problem:
        return problem
    req = Requirement(text)
    pins = [spec for spec in req.specifier if spec.operator in ("==", "===")]
    if len(pins) != 1 or "*" in pins[0].version or req.marker is not None:
        return f"{text!r} must pin one exact version (e.g. \"ziglang==0.17.1\")"
    return None


def _relative(value: str) -> str | None:
    if not value.strip() or value.startswith("/") or ".." in value.split("/"):
        return f"{value!r} must be a relative path inside the install root"
    return None


def _items(c: _Checker, table: Mapping[str, Any], name: str) -> list[dict[str, str]]:
    """An array of tables of strings (``[[node.links]]`` or inline), keys checked."""
    key = f"node.{name}"
    value = table.get(name, [])
    if not isinstance(value, list):
        c.add(key, f"must be an array of tables, not {_type_name(value)}")
        return []
    allowed = NODE_ITEM_KEYS[name]
    items = []
    for index, item in enumerate(value):
        at = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            c.add(at, f"must be a table with {', '.join(allowed)}, not {_type_name(item)}")
            continue
        extra = sorted(set(item) - set(allowed))
        missing = [k for k in allowed if k not in item]
        bad = [k for k in allowed if k in item and not isinstance(item[k], str)]
        if extra or missing or bad:
            c.add(at, f"needs exactly the string keys {', '.join(allowed)}")
            continue
        items.append({k: str(item[k]) for k in allowed})
    return items


def _string_map(c: _Checker, table: Mapping[str, Any], name: str, kind: type,
                check: Callable[[str, Any], str | None]) -> dict[str, Any] | None:
    key = f"node.{name}"
    value = table.get(name, {})
    if not isinstance(value, Mapping):
        c.add(key, f"must be a table, not {_type_name(value)}")
        return None
    result = {}
    for item_key, item in value.items():
        plain = _plain(item)
        if not isinstance(plain, kind) or (kind is str and isinstance(plain, bool)):
            c.add(f"{key}.{item_key}", f"must be {_article(kind)}, not {_type_name(item)}")
            continue
        message = check(str(item_key), plain)
        if message:
            c.add(f"{key}.{item_key}", message)
            continue
        result[str(item_key)] = plain
    return result


def _node(c: _Checker, data: Mapping[str, Any], packages: Packages | None) -> Node | None:
    table = c.table(data, "node", required=False)
    if table is None:
        return None
    package = c.field(table, "node", "package", str)
    version = c.field(table, "node", "version", str)
    toolchain = c.field(table, "node", "toolchain", str, check=_exact_pin)
    commands = _string_map(c, table, "bin", str, lambda name, entry: (
        f"{name!r} is not a command name" if not SCRIPT_RE.match(name) else _relative(entry)))
    allow = _string_map(c, table, "allow_scripts", bool, lambda _n, _v: None)
    paths = {name: c.strings(table, "node", name, required=False, item_check=_relative)
             for name in ("nested", "drop")}
    headers = c.strings(table, "node", "build_headers", required=False,
                        item_check=_matches(re.compile(r"^[a-z0-9][a-z0-9+.-]+$"),
                                            "a Debian package name"))
    items = {name: _items(c, table, name) for name in NODE_ITEM_KEYS}
    if packages is not None and not any(
            _canonical_name(r) == NODE_RUNTIME_DIST for r in packages.requirements):
        c.add("node", f"a Node.js app runs on the {NODE_RUNTIME_DIST} wheel: add it to "
              f'packages.requirements (e.g. "{NODE_RUNTIME_DIST}==24.19.0")')
    if package is None or version is None or toolchain is None or commands is None \
            or allow is None:
        return None
    try:
        app = NodeAppSpec(
            package=package, version=version, nested=paths["nested"] or (),
            allow_scripts=tuple(sorted(allow.items())),
            links=tuple(Link(**item) for item in items["links"]),
            scripts=tuple(ProjectScript(**item) for item in items["scripts"]),
            drop=paths["drop"] or (), build_headers=headers or (),
            exempt=tuple(Exemption(**item) for item in items["exempt"]),
        )
    except BuilderError as exc:
        c.add("node", exc.what.removeprefix("bad [node] settings: "))
        return None
    return Node(app=app, toolchain=toolchain, bin=tuple(sorted(commands.items())))


def _canonical_name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return ""


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


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
    except TOMLKitError as exc:
        raise ValidationError(
            [Problem(path=path, line=None, key="", message=f"TOML syntax error: {exc}")]
        ) from None
    oversized = _oversized(document, path, Locator(text))
    if oversized:
        raise ValidationError(oversized, hint="shorten these values and run the command again")
    data: Mapping[str, Any] = document
    c = _Checker(path, Locator(text))
    for extra in sorted(set(data) - set(SCHEMA_KEYS[""])):
        c.add(extra, f"unknown key (allowed: {', '.join(SCHEMA_KEYS[''])})")
    fmt = c.field(data, "", "format_version", int)
    if fmt is not None and fmt != RECIPE_FORMAT_VERSION:
        c.add("format_version", f"unsupported format_version {fmt} (this builder reads "
              f"{RECIPE_FORMAT_VERSION})")
    app, runtime, packages = _app(c, data), _runtime(c, data), _packages(c, data)
    targets, service = _targets(c, data), _service(c, data)
    kernels = _kernels(c, data, service)
    node = _node(c, data, packages)
    build, checks = _build(c, data), _checks(c, data, service)
    if c.problems:
        ordered = sorted(c.problems, key=lambda p: (p.line is None, p.line or 0))
        raise ValidationError(ordered, hint="fix the recipe and run the command again")
    if app is None or runtime is None or packages is None or targets is None:
        raise InternalError("a recipe section is unset but no problem was reported")
    name, version, summary, ui = app
    return Recipe(path=path, name=name, version=version, summary=summary, ui=ui,
                  runtime=runtime, packages=packages, targets=targets, service=service,
                  kernels=kernels, node=node, build=build, checks=checks)


_KEY_LINE = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*=""")
_TABLE_LINE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def duplicate_key_line(text: str) -> int | None:
    """The line where a key is given a second time in the same table (a best effort: None when
    the scan cannot tell, e.g. inside a multi-line string)."""
    seen: set[tuple[str, str]] = set()
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TABLE_LINE.match(line):
            table = f"{header.group(1)}#{number}" if line.lstrip().startswith("[[") \
                else header.group(1)
            continue
        if match := _KEY_LINE.match(line):
            key = (table, next(g for g in match.groups() if g is not None))
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
