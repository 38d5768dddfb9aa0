from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from relocate_factories import elf_info

from builder.relocate.elfplan import (
    Roots,
    is_system_library,
    plan_elves,
    plan_rpath,
    unresolved_needed,
)
from builder.relocate.model import RpathEdit, RpathTag

P = PurePosixPath
APP = "/tmp/stage-1/app"
ROOTS = Roots(inside=(P("/opt/apps/demo"), P(APP), P("/private/tmp/stage-1/app")))
EXT = P("python/lib/python3.11/site-packages/pkg/_ext.so")


@pytest.mark.parametrize(
    ("entries", "new", "removed"),
    [
        # staged absolute path -> $ORIGIN-relative equivalent
        ((f"{APP}/python/lib/python3.11/site-packages/pkg.libs",), ("$ORIGIN/../pkg.libs",), ()),
        ((f"{APP}/python/lib/python3.11/site-packages/pkg",), ("$ORIGIN",), ()),
        (("/private/tmp/stage-1/app/python/lib",), ("$ORIGIN/../../..",), ()),
        # the final location counts as inside the tree
        (("/opt/apps/demo/python/lib",), ("$ORIGIN/../../..",), ()),
        # outside the tree: removed
        (("/usr/local/lib",), (), ("/usr/local/lib",)),
        (("/tmp/stage-1/other",), (), ("/tmp/stage-1/other",)),
        (("$ORIGIN/../../../../../../etc",), (), ("$ORIGIN/../../../../../../etc",)),
        (("lib",), (), ("lib",)),
        (("/lib/$LIB",), (), ("/lib/$LIB",)),
        # mixed, with a duplicate after rewriting
        (
            ("$ORIGIN/../pkg.libs", f"{APP}/python/lib/python3.11/site-packages/pkg.libs", "/x"),
            ("$ORIGIN/../pkg.libs",),
            ("/x",),
        ),
    ],
)
def test_rpath_entries_are_classified(
    entries: tuple[str, ...], new: tuple[str, ...], removed: tuple[str, ...]
) -> None:
    edit = plan_rpath(elf_info(runpath=entries), EXT, ROOTS)
    assert edit == RpathEdit(path=EXT, tag=RpathTag.RUNPATH, old=entries, new=new, removed=removed)


@pytest.mark.parametrize(
    "entries", [(), ("$ORIGIN",), ("$ORIGIN/../pkg.libs",), ("${ORIGIN}/../../..",)]
)
def test_relative_search_paths_inside_the_tree_need_no_edit(entries: tuple[str, ...]) -> None:
    assert plan_rpath(elf_info(runpath=entries), EXT, ROOTS) is None


def test_dt_rpath_stays_dt_rpath() -> None:
    edit = plan_rpath(elf_info(rpath=(f"{APP}/python/lib",)), P("python/bin/python3.11"), ROOTS)
    assert edit is not None
    assert (edit.tag, edit.new) == (RpathTag.RPATH, ("$ORIGIN/../lib",))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("libc.so.6", True),
        ("ld-linux-x86-64.so.2", True),
        ("ld-linux-aarch64.so.1", True),
        ("libstdc++.so.6", True),
        ("libX11.so.6", True),
        ("libcrypt.so.1", True),
        ("libssl.so.3", False),
        ("libpython3.11.so.1.0", False),
        ("libc.so", False),
    ],
)
def test_system_libraries(name: str, expected: bool) -> None:
    assert is_system_library(name) is expected


def test_needed_resolution() -> None:
    files = {"python/lib/libffi.so.8", "python/lib/libz.so.1"}
    missing = unresolved_needed(
        P("python/lib/python3.11/lib-dynload/_ctypes.so"),
        (
            "libffi.so.8",
            "libc.so.6",
            "libpython3.11.so.1.0",
            "libz.so.1",
            "libgone.so.1",
            "/abs/libx.so",
        ),
        ("python/lib/python3.11/lib-dynload/../..",),
        files,
        {"libpython3.11.so.1.0"},
    )
    assert missing == ("libgone.so.1", "/abs/libx.so")


def test_plan_elves_rewrites_and_warns() -> None:
    interp = P("python/bin/python3.11")
    infos = {
        interp: elf_info(needed=("libpython3.11.so.1.0", "libc.so.6"), runpath=("$ORIGIN/../lib",)),
        P("python/lib/libpython3.11.so.1.0"): elf_info(needed=("libm.so.6",)),
        P("python/lib/python3.11/lib-dynload/_ssl.so"): elf_info(
            needed=("libpython3.11.so.1.0", "libssl.so.3"), rpath=("/install/lib",)
        ),
        EXT: elf_info(
            needed=("libfoo-1a2b.so.1",),
            runpath=(f"{APP}/python/lib/python3.11/site-packages/pkg.libs",),
        ),
    }
    files = {str(p) for p in infos} | {
        "python/lib/python3.11/site-packages/pkg.libs/libfoo-1a2b.so.1"
    }
    edits, warnings = plan_elves(infos, files=files, roots=ROOTS, interpreter=interp)
    assert [(str(e.path), e.tag.value, e.new, e.removed) for e in edits] == [
        ("python/lib/python3.11/lib-dynload/_ssl.so", "rpath", (), ("/install/lib",)),
        (str(EXT), "runpath", ("$ORIGIN/../pkg.libs",), ()),
    ]
    assert warnings == (
        "python/lib/python3.11/lib-dynload/_ssl.so: needed library libssl.so.3 is neither in "
        "the tree nor a system one",
        "python/lib/python3.11/lib-dynload/_ssl.so: removed search path entry '/install/lib' "
        "(outside the app tree)",
    )
