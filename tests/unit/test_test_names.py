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


def test_no_test_imports_from_conftest() -> None:
    """``conftest`` is the name of tests/unit's and tests/integration's conftest.py both; which
    one ``from conftest import ...`` finds depends on which pytest loaded first, so a run of unit
    and integration files together failed at collection. Shared helpers live in modules of
    their own names (tests/builder_run.py, tests/factories.py, ...); conftest files hold
    fixtures only."""
    import ast

    found = []
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [f"{path.relative_to(TESTS)}:{node.lineno}" for node in ast.walk(tree)
                  if (isinstance(node, ast.ImportFrom) and node.module == "conftest")
                  or (isinstance(node, ast.Import)
                      and any(a.name == "conftest" for a in node.names))]
    assert found == []
