"""The import contract: builder's packages in a declared order, imports pointing down only.

Every module under ``builder/`` belongs to a unit (a top-level package such as ``locking``, or a
top-level module such as ``net``), every unit to one layer of ``LAYERS``. A module may import its
own unit and any unit listed before its own; an import of a unit listed after it (an upward
import) fails this test with the file, line and import, and so does a cycle between modules.
Imports inside functions count too (the CLI's lazy ones). A new unit must be placed in
``LAYERS`` (and in the README's "Repository" map, checked below): nothing is allowed silently.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "builder"

# Bottom to top; inside a layer, too, a unit imports only units listed before it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # facts and tools every stage may use; no pipeline knowledge
    ("foundation", ("builder", "errors", "scratch", "fsutil", "host", "layout", "treewatch",
                    "net", "pbs", "tarutil", "tarsafe", "tools", "sandbox", "elf", "emulation",
                    "schema")),
    # the data the stages hand each other: a recipe, a lock (model, fields, codec)
    ("models", ("recipe", "lock")),
    # the stages, in import order: fetch, sdist and node come before locking because locking
    # downloads sdists (to read their build requirements) and locks a Node app with them
    ("stages", ("install", "cpython", "fetch", "sdist", "node", "locking", "relocate", "steps",
                "check", "launch", "sbom", "bundle", "pipeline")),
    # what reads bundles after the build: the catalog index, OCI images, the release matrix,
    # the cluster agent (nothing but the CLI imports the agent)
    ("consumers", ("catalog", "oci", "release", "agent")),
    # the command line, a thin layer over everything
    ("front", ("cli", "__main__")),
)


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # module importing, e.g. "builder.fetch.wheels"
    target: str  # module imported (a module that exists), e.g. "builder.tools.pip"
    where: str  # "builder/fetch/wheels.py:17"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _existing(name: str, root: Path) -> str | None:
    """``name`` or its parent as a module that exists under ``root`` (``from M import f``)."""
    for candidate in (name, name.rpartition(".")[0]):
        if not candidate:
            continue
        path = root.parent.joinpath(*candidate.split("."))
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return candidate
    return None


def imports(root: Path) -> Iterator[Import]:
    """Every import of a module under ``root`` by a module under ``root``, anywhere in a file."""
    prefix = root.name
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                names = [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                if name != prefix and not name.startswith(prefix + "."):
                    continue
                target = _existing(name, root)
                if target is not None and target != source:
                    where = f"{path.relative_to(root.parent).as_posix()}:{node.lineno}"
                    yield Import(source, target, where)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(found: list[Import], layers: tuple[tuple[str, tuple[str, ...]], ...]
                   ) -> list[str]:
    rank = {unit: i for i, unit in enumerate(u for _, units in layers for u in units)}
    layer = {unit: name for name, units in layers for unit in units}
    problems = []
    for imp in found:
        src, dst = unit_of(imp.source), unit_of(imp.target)
        if src == dst:
            continue
        for unit in (src, dst):
            if unit not in rank:
                problems.append(f"{imp.where}: {unit} is in no layer: place it in LAYERS "
                                "(tests/unit/test_import_contract.py) and the README map")
        if src in rank and dst in rank and rank[dst] > rank[src]:
            problems.append(f"{imp.where}: {imp.source} imports {imp.target}: {src} "
                            f"({layer[src]}) may not import {dst} ({layer[dst]}), which comes "
                            "after it")
    return sorted(set(problems))


def cycles(found: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges: dict[str, set[str]] = {}
    for imp in found:
        edges.setdefault(imp.source, set()).add(imp.target)
        edges.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(result)


def describe_cycle(component: list[str], found: list[Import]) -> str:
    members = set(component)
    lines = [f"  {i.where}: {i.source} imports {i.target}" for i in found
             if i.source in members and i.target in members]
    return "import cycle between " + ", ".join(component) + ":\n" + "\n".join(sorted(lines))


def all_units(root: Path) -> set[str]:
    return {unit_of(module_name(path, root)) for path in root.rglob("*.py")}


# --- the contract, on builder itself -----------------------------------------------------------

def test_every_unit_is_in_exactly_one_layer() -> None:
    listed = [u for _, units in LAYERS for u in units]
    assert len(listed) == len(set(listed)), "a unit is listed twice"
    missing = sorted(all_units(PACKAGE) - set(listed))
    assert not missing, f"not in any layer (add them to LAYERS and the README map): {missing}"
    gone = sorted(set(listed) - all_units(PACKAGE))
    assert not gone, f"listed in LAYERS but not in builder/: {gone}"


def test_imports_point_down_only() -> None:
    problems = upward_imports(list(imports(PACKAGE)), LAYERS)
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_no_import_cycle_between_modules() -> None:
    found = list(imports(PACKAGE))
    problems = [describe_cycle(c, found) for c in cycles(found)]
    assert not problems, "\n".join(problems)


def test_the_readme_map_lists_every_layer_and_unit_in_order() -> None:
    """The README's map reads top-down: its units in reverse order of ``LAYERS``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Repository\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    layer_names = [line.split()[0] for line in block.splitlines() if not line.startswith(" ")]
    assert layer_names == [name for name, _ in reversed(LAYERS)]
    units = [u for _, listed in LAYERS for u in listed if u not in ("builder", "__main__")]
    named = [word for word in re.findall(r"`([a-z_]+)`", block) if word in units]
    assert named == list(reversed(units)), "the README map's order differs from LAYERS"


# --- the checker itself catches what it must ---------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_names_an_upward_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "low/__init__.py": "", "low/a.py": "def f() -> None:\n    from pkg.high import b\n",
        "high/__init__.py": "", "high/b.py": "from pkg.low.a import f\n",
    })
    layers = (("bottom", ("pkg", "low")), ("top", ("high",)))
    assert upward_imports(list(imports(root)), layers) == [
        "pkg/low/a.py:2: pkg.low.a imports pkg.high.b: low (bottom) may not import high (top), "
        "which comes after it"]


def test_checker_names_an_unplaced_unit_and_a_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "one/__init__.py": "", "one/x.py": "from . import y\n", "one/y.py": "from .x import *\n",
        "stray.py": "import pkg.one.x\n",
    })
    found = list(imports(root))
    assert upward_imports(found, (("all", ("pkg", "one")),)) == [
        "pkg/stray.py:1: stray is in no layer: place it in LAYERS "
        "(tests/unit/test_import_contract.py) and the README map"]
    assert cycles(found) == [["pkg.one.x", "pkg.one.y"]]
    assert describe_cycle(cycles(found)[0], found) == (
        "import cycle between pkg.one.x, pkg.one.y:\n"
        "  pkg/one/x.py:1: pkg.one.x imports pkg.one.y\n"
        "  pkg/one/y.py:1: pkg.one.y imports pkg.one.x")


@pytest.mark.parametrize(("source", "expected"), [
    ("import pkg.one.x", "pkg.one.x"),
    ("from pkg.one import x", "pkg.one.x"),
    ("from pkg.one.x import name", "pkg.one.x"),
    ("from pkg import one", "pkg.one"),
])
def test_checker_resolves_import_forms(tmp_path: Path, source: str, expected: str) -> None:
    root = _tree(tmp_path, {"one/__init__.py": "", "one/x.py": "name = 1\n",
                            "two.py": source + "\n"})
    assert [i.target for i in imports(root) if i.source == "pkg.two"] == [expected]


# --- packages whose __init__ re-exports lazily (builder.lazy_exports) ------------------------

def lazy_packages() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("__init__.py")
                  if "lazy_exports(__name__" in p.read_text(encoding="utf-8"))


def declared_exports(init: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(names imported under TYPE_CHECKING -> module, _EXPORTS, __all__) of a lazy __init__."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    exports: dict[str, str] = {}
    listed: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module, ast.unparse(imp)
                typed.update({alias.asname or alias.name: imp.module for alias in imp.names})
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "_EXPORTS":
                exports = ast.literal_eval(node.value)
            elif node.targets[0].id == "__all__":
                listed = ast.literal_eval(node.value)
    return typed, exports, listed


def test_lazy_packages_export_what_they_declare() -> None:
    """The names a type checker and the import contract see (under TYPE_CHECKING) are the ones
    imported at run time (_EXPORTS) and the public ones (__all__)."""
    found = lazy_packages()
    assert {module_name(p, PACKAGE) for p in found} >= {"builder.agent", "builder.elf",
                                                        "builder.oci"}
    for init in found:
        typed, exports, listed = declared_exports(init)
        assert typed and typed == exports, init
        assert sorted(listed) == sorted(exports), init


def test_lazy_exports_resolve_and_importing_one_module_loads_no_other() -> None:
    """Every exported name resolves (to the object of its module); an unknown one is an
    AttributeError; importing the install path loads neither pyelftools, the OCI client, the
    mounted-image path nor urllib's HTTP client (what a cold ``agent install`` of a local
    archive does not need)."""
    script = (
        "import importlib, sys\n"
        "import builder.agent.install, builder.agent.source, builder.cli.agent\n"
        "loaded = sorted(m for m in ('elftools', 'builder.oci.pull', 'builder.oci.registry', "
        "'builder.agent.image', 'builder.agent.verify', 'builder.agent.compat.probe', "
        "'builder.agent.gc', 'http.client', 'urllib.request') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "for package in ('builder.agent', 'builder.elf', 'builder.oci'):\n"
        "    module = importlib.import_module(package)\n"
        "    for name in module.__all__:\n"
        "        value = getattr(module, name)\n"
        "        home = importlib.import_module(module._EXPORTS[name])\n"
        "        assert value is getattr(home, name), (package, name)\n"
        "    try:\n"
        "        module.no_such_name\n"
        "    except AttributeError as exc:\n"
        "        assert str(exc) == f\"module {package!r} has no attribute 'no_such_name'\"\n"
        "    else:\n"
        "        raise AssertionError(package)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
