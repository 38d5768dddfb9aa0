"""Trimming: the classification rules, and plan + apply on a small tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.node.audit import NativeFile, Platform, TreeAudit, Verdict
from builder.node.trim import (
    Category,
    CategoryTotal,
    TrimOptions,
    TrimReport,
    apply_trim,
    classify,
    plan_runtime_trim,
    plan_trim,
)

NATIVE = ("node_modules/sqlite3",)
FOREIGN = frozenset({"node_modules/rg/bin/linux-arm64/rg"})


@pytest.mark.parametrize(("rel", "expected"), [
    ("node_modules/sqlite3/build/Release/sqlite3.node", None),
    ("node_modules/sqlite3/build/Release/spawn-helper", None),
    ("node_modules/sqlite3/build/Release/obj.target/sqlite3.node", Category.BUILD_LEFTOVERS),
    ("node_modules/sqlite3/build/Release/.deps/x.o.d", Category.BUILD_LEFTOVERS),
    ("node_modules/sqlite3/build/Makefile", Category.BUILD_LEFTOVERS),
    ("node_modules/sqlite3/build/Release/sqlite3.a", Category.STATIC_LIBS),
    ("node_modules/sqlite3/build/Release/obj.target/x/a.o", Category.STATIC_LIBS),
    ("node_modules/sqlite3/src/statement.cc", Category.NATIVE_SOURCES),
    ("node_modules/sqlite3/deps/sqlite-autoconf.tar.gz", Category.NATIVE_SOURCES),
    ("node_modules/sqlite3/src/statement.h", Category.HEADERS),
    ("node_modules/sqlite3/lib/sqlite3.js", None),
    ("node_modules/sqlite3/binding.gyp", None),
    ("node_modules/nan/nan.h", Category.HEADERS),
    ("node_modules/other/src/x.c", None),  # not a package we built: sources may be data
    ("node_modules/other/tests/fixture.tar.gz", None),
    ("node_modules/rg/bin/linux-arm64/rg", Category.OTHER_PLATFORMS),
    ("node_modules/pty/third_party/conpty/conpty.dll", Category.OTHER_PLATFORMS),
    ("node_modules/x/dist/index.js.map", None),
])
def test_classify(rel: str, expected: Category | None) -> None:
    assert classify(rel, native_packages=NATIVE, foreign=FOREIGN,
                    options=TrimOptions()) is expected


def test_sourcemaps_only_on_request() -> None:
    rel = "node_modules/x/dist/index.js.map"
    assert classify(rel, native_packages=(), foreign=frozenset(),
                    options=TrimOptions(sourcemaps=True)) is Category.SOURCEMAPS


def _file(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_plan_and_apply(tmp_path: Path) -> None:
    root = tmp_path / "app"
    _file(root, "node_modules/sqlite3/package.json", 2)
    _file(root, "node_modules/sqlite3/binding.gyp", 3)
    _file(root, "node_modules/sqlite3/build/Release/sqlite3.node", 100)
    _file(root, "node_modules/sqlite3/build/Release/obj.target/sqlite3.node", 100)
    _file(root, "node_modules/sqlite3/build/Release/obj.target/s/a.o", 50)
    _file(root, "node_modules/sqlite3/src/a.cc", 7)
    _file(root, "node_modules/rg/bin/linux-arm64/rg", 40)
    (root / "node_modules/sqlite3/alias.node").symlink_to("build/Release/sqlite3.node")
    node = "node_modules/sqlite3/build/Release/sqlite3.node"
    audit = TreeAudit(root=root, glibc_floor=(2, 28), files=(
        NativeFile(path=node, size=100, arch="x86_64", platform=Platform.TARGET, glibc=(2, 17),
                   glibcxx=None, needed=(), has_debug=True, verdict=Verdict.OK),
        NativeFile(path="node_modules/rg/bin/linux-arm64/rg", size=40, arch="aarch64",
                   platform=Platform.OTHER_ARCH, glibc=None, glibcxx=None, needed=(),
                   has_debug=True, verdict=Verdict.FOREIGN),
    ))
    plan = plan_trim(root, audit=audit)
    assert [(r.path, r.category, r.size) for r in plan.removals] == [
        ("node_modules/rg/bin/linux-arm64/rg", Category.OTHER_PLATFORMS, 40),
        ("node_modules/sqlite3/build/Release/obj.target/s/a.o", Category.STATIC_LIBS, 50),
        ("node_modules/sqlite3/build/Release/obj.target/sqlite3.node",
         Category.BUILD_LEFTOVERS, 100),
        ("node_modules/sqlite3/src/a.cc", Category.NATIVE_SOURCES, 7),
    ]
    assert plan.strips == (node,)

    stripped: list[Path] = []

    def strip(path: Path) -> None:
        stripped.append(path)
        path.write_bytes(b"x" * 60)

    report = apply_trim(plan, stripper=strip)
    assert stripped == [root / node]
    assert dict(report.totals) == {
        Category.BUILD_LEFTOVERS: CategoryTotal(files=1, bytes=100),
        Category.DEBUG_SYMBOLS: CategoryTotal(files=1, bytes=40),
        Category.NATIVE_SOURCES: CategoryTotal(files=1, bytes=7),
        Category.OTHER_PLATFORMS: CategoryTotal(files=1, bytes=40),
        Category.STATIC_LIBS: CategoryTotal(files=1, bytes=50),
    }
    assert report.saved == 237
    # emptied directories go too; the symlink stays
    assert not (root / "node_modules/rg").exists()
    assert not (root / "node_modules/sqlite3/build/Release/obj.target").exists()
    assert (root / "node_modules/sqlite3/alias.node").is_symlink()
    assert apply_trim(plan_trim(root), stripper=None).totals == ()


def test_without_a_strip_tool_files_are_reported(tmp_path: Path) -> None:
    _file(tmp_path, "m.node", 5)
    audit = TreeAudit(root=tmp_path, glibc_floor=(2, 28), files=(
        NativeFile(path="m.node", size=5, arch="x86_64", platform=Platform.TARGET,
                   glibc=None, glibcxx=None, needed=(), has_debug=True, verdict=Verdict.OK),))
    report = apply_trim(plan_trim(tmp_path, audit=audit), stripper=None)
    assert report.unstripped == ("m.node",)
    assert "not stripped (no strip tool): 1 files" in report.render()


def test_runtime_trim_and_merged_report(tmp_path: Path) -> None:
    _file(tmp_path, "include/node/v8.h", 30)
    _file(tmp_path, "share/man/man1/node.1", 4)
    _file(tmp_path, "bin/node", 9)
    report = apply_trim(plan_runtime_trim(tmp_path), stripper=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]
    merged = report.merged(TrimReport(totals=((Category.HEADERS,
                                               CategoryTotal(files=2, bytes=70)),)))
    assert dict(merged.totals)[Category.HEADERS] == CategoryTotal(files=3, bytes=100)
    assert merged.saved == 104
    assert merged.render().splitlines() == [
        "docs                  1 files       0.0 MB",
        "headers               3 files       0.0 MB",
        "total                 4 files       0.0 MB",
    ]
