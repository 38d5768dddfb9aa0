"""Every test file has a basename of its own: pytest imports test modules by basename (rootdir
imports), so a unit and an integration test of one name stop the whole run at collection, which
a unit-only run never shows."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_basename() -> None:
    seen: defaultdict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        if "__pycache__" not in path.parts:
            seen[path.name].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}


def test_conftest_helpers_are_imported_at_module_level() -> None:
    """``from conftest import ...`` inside a test function runs after collection, when the name
    ``conftest`` may be another directory's conftest (tests/unit's): a whole-suite run then fails
    with an ImportError that a run of one directory never shows. Module-level imports run while
    their own directory's conftest is the one loaded."""
    import ast

    late = []
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                late += [f"{path.relative_to(TESTS)}:{inner.lineno}" for inner in ast.walk(node)
                         if isinstance(inner, ast.ImportFrom) and inner.module == "conftest"]
    assert late == []
