from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

import pytest
from relocate_factories import (
    EXT,
    SITE,
    FakeCompiler,
    FakePatchelf,
    demo_app,
    elf_info,
    planned_demo,
    record_hash,
)

from builder.errors import BuilderError
from builder.relocate import (
    RelocationPlan,
    RelocationReport,
    apply_relocation,
    plan_relocation,
    render_trampoline,
    scan_for_paths,
)

FINAL = PurePosixPath("/opt/apps/demo")


@pytest.fixture
def planned(tmp_path: Path) -> tuple[Path, RelocationPlan]:
    return planned_demo(tmp_path, FINAL)


def test_apply_edits_everything(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    patchelf = FakePatchelf(app=app)
    compiler = FakeCompiler(failing=(f"{SITE}/piptools/__init__.py",))
    report = apply_relocation(plan, patchelf=patchelf, compiler=compiler)

    assert report == RelocationReport(
        scripts=5,
        trampolines=3,
        elfs=1,
        pycs=2,
        removed=3,
        records=3,
        warnings=(
            f"{SITE}/piptools/__init__.py: does not compile, left without .pyc",
            f"{EXT}: removed search path entry '/usr/lib64' (outside the app tree)",
        ),
    )
    hello = (app / "python/bin/hello").read_bytes()
    assert hello == render_trampoline(
        script=PurePosixPath("python/bin/hello"),
        interpreter=PurePosixPath("python/bin/python3.11"),
        flags=(),
        body=plan.scripts[0].body,
    )
    for name in ("python/bin/hello", "bin/hello", "bin/pip-compile"):
        assert stat.S_IMODE((app / name).stat().st_mode) == 0o755
    assert (app / "bin/hello").read_bytes().endswith(plan.scripts[0].body)
    assert not (app / "bin/pip3").exists()
    assert (app / "python/bin/python3.11-config").read_bytes() == b"#!/bin/sh\necho config\n"
    for removed in plan.removals:
        assert not (app / removed).exists()
    assert patchelf.calls == [("set", EXT, "$ORIGIN/../../..")]
    assert compiler.calls == [(app, (app / "python/lib/python3.11",))]
    # the tree as the fakes leave it holds no staging path except in the fake-patched binary's
    # RUNPATH, which is only in the plan, and direct_url.json, which is gone
    assert scan_for_paths(app, plan.needles) == ()


def test_records_are_rewritten_with_real_hashes(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    apply_relocation(plan, patchelf=FakePatchelf(), compiler=FakeCompiler())
    record = (app / SITE / "hello-1.0.dist-info/RECORD").read_text()
    hello = (app / "python/bin/hello").read_bytes()
    assert f"../../../bin/hello,{record_hash(hello)},{len(hello)}\n" in record
    assert "REQUESTED" not in record
    assert "direct_url.json" not in record
    for line in record.splitlines():
        path, digest, size = line.split(",")
        if digest:
            data = (app / SITE / path).read_bytes()
            assert (digest, int(size)) == (record_hash(data), len(data)), path


def test_stale_plan_is_refused_before_any_write(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    (app / "python/bin/pip3").write_bytes(b"#!/usr/bin/python3\nchanged\n")
    (app / "bin").mkdir()
    (app / "bin/hello").write_bytes(b"")
    before = (app / "python/bin/hello").read_bytes()
    with pytest.raises(BuilderError) as info:
        apply_relocation(plan, patchelf=FakePatchelf(), compiler=FakeCompiler())
    assert info.value.what == (
        "the staged tree does not match the relocation plan:\n"
        "  python/bin/pip3: changed since the plan was made\n"
        "  bin/hello: already exists"
    )
    assert (app / "python/bin/hello").read_bytes() == before
    assert (app / SITE / "hello-1.0.dist-info/REQUESTED").exists()


def test_read_only_binary_is_patched_and_keeps_its_mode(
    planned: tuple[Path, RelocationPlan],
) -> None:
    app, plan = planned
    (app / EXT).chmod(0o555)
    seen: list[int] = []

    class Recording(FakePatchelf):
        def set_rpath(self, path: Path, rpath: str) -> None:
            seen.append(stat.S_IMODE(path.stat().st_mode))

    apply_relocation(plan, patchelf=Recording(), compiler=FakeCompiler())
    assert seen == [0o755]
    assert stat.S_IMODE((app / EXT).stat().st_mode) == 0o555


def test_rpath_tag_decides_the_patchelf_call(tmp_path: Path) -> None:
    staging = tmp_path / "s"
    app, reader = demo_app(staging)
    reader.infos[EXT] = elf_info(rpath=(f"{app}/python/lib",))
    reader.infos["python/lib/libgone.so"] = elf_info(runpath=("/usr/lib",))
    (app / "python/lib/libgone.so").write_bytes(b"\x7fELF")
    plan = plan_relocation(
        app, final_root=FINAL, staging_root=staging, expose=(), elf_reader=reader
    )
    patchelf = FakePatchelf(app=app)
    apply_relocation(plan, patchelf=patchelf, compiler=FakeCompiler())
    assert patchelf.calls == [
        ("set", "python/lib/libgone.so", ""),
        ("force", EXT, "$ORIGIN/../../.."),
    ]
