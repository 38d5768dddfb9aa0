"""``apply_relocation`` past the happy path: stale trees, the .pyc step's choices, modes."""

from __future__ import annotations

import dataclasses
import os
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
)

from builder.errors import BuilderError
from builder.relocate import RelocationPlan, RpathTag, apply_relocation, plan_relocation
from builder.relocate import apply as apply_module
from builder.relocate.model import PycResult, PycStep

FINAL = PurePosixPath("/opt/apps/demo")
HELLO_RECORD = f"{SITE}/hello-1.0.dist-info/RECORD"


@pytest.fixture
def planned(tmp_path: Path) -> tuple[Path, RelocationPlan]:
    return planned_demo(tmp_path, FINAL)


def _refused(plan: RelocationPlan) -> str:
    with pytest.raises(BuilderError) as info:
        apply_relocation(plan, patchelf=FakePatchelf(), compiler=FakeCompiler())
    assert info.value.where == str(plan.app_root)
    assert info.value.hint == "plan and apply the relocation again on an unchanged tree"
    return info.value.what


def test_every_kind_of_stale_path_is_listed(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    (app / HELLO_RECORD).write_text("changed\n")  # a record edited
    (app / "python/bin/hello").unlink()  # a script gone
    (app / "python/bin/hello-admin").rename(app / "elsewhere")  # a script now a symlink
    (app / "python/bin/hello-admin").symlink_to(app / "elsewhere")
    (app / EXT).unlink()  # a binary to patch gone
    (app / plan.removals[0]).unlink()  # a file to remove gone
    assert _refused(plan) == (
        "the staged tree does not match the relocation plan:\n"
        "  python/bin/hello: changed since the plan was made\n"
        "  python/bin/hello-admin: changed since the plan was made\n"
        f"  {HELLO_RECORD}: changed since the plan was made\n"
        f"  {plan.removals[0]}: missing\n"
        f"  {EXT}: missing"
    )
    assert (app / plan.removals[1]).exists()  # nothing written


def test_a_dangling_symlink_where_a_trampoline_goes_is_refused(
        planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    (app / "bin").mkdir()
    (app / "bin/hello-admin").symlink_to(app / "nowhere")
    assert _refused(plan).endswith("\n  bin/hello-admin: already exists")


def test_symlinked_paths_to_remove_or_patch_are_present(
        planned: tuple[Path, RelocationPlan]) -> None:
    # lexists: a dangling symlink is there to remove
    app, plan = planned
    target = app / plan.removals[0]
    target.unlink()
    target.symlink_to(app / "nowhere")
    report = apply_relocation(plan, patchelf=FakePatchelf(), compiler=FakeCompiler())
    assert report.removed == 3
    assert not target.is_symlink()


def test_trampoline_directory_is_created_0755(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    old = os.umask(0)
    try:
        apply_relocation(plan, patchelf=FakePatchelf(), compiler=FakeCompiler())
    finally:
        os.umask(old)
    assert stat.S_IMODE((app / "bin").stat().st_mode) == 0o755


def test_no_pyc_step_compiles_nothing(planned: tuple[Path, RelocationPlan]) -> None:
    _app, plan = planned
    compiler = FakeCompiler()
    report = apply_relocation(dataclasses.replace(plan, pyc=None), patchelf=FakePatchelf(),
                              compiler=compiler)
    assert report.pycs == 0
    assert compiler.calls == []


def test_only_existing_pyc_dirs_are_compiled(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    compiler = FakeCompiler()
    dirs = ("gone", "python/bin/hello", "python/lib/python3.11")
    step = PycStep(python_minor="3.11", dirs=tuple(PurePosixPath(d) for d in dirs))
    report = apply_relocation(dataclasses.replace(plan, pyc=step), patchelf=FakePatchelf(),
                              compiler=compiler)
    assert compiler.calls == [(app, (app / "python/lib/python3.11",))]
    assert report.pycs == 3


def test_no_existing_pyc_dir_compiles_nothing(planned: tuple[Path, RelocationPlan]) -> None:
    _app, plan = planned
    compiler = FakeCompiler()
    step = PycStep(python_minor="3.11", dirs=(PurePosixPath("gone"),))
    report = apply_relocation(dataclasses.replace(plan, pyc=step), patchelf=FakePatchelf(),
                              compiler=compiler)
    assert (report.pycs, compiler.calls) == (0, [])


def test_without_a_compiler_the_bundle_interpreter_is_selected(
        planned: tuple[Path, RelocationPlan], monkeypatch: pytest.MonkeyPatch) -> None:
    app, plan = planned
    chosen = FakeCompiler(failing=(f"{SITE}/pip/__init__.py",))
    asked: list[tuple[Path, PurePosixPath, str]] = []

    def select(app_root: Path, interpreter: PurePosixPath, *, minor: str) -> FakeCompiler:
        asked.append((app_root, interpreter, minor))
        return chosen

    monkeypatch.setattr(apply_module, "select_pyc_compiler", select)
    step = PycStep(python_minor="3.9", dirs=(PurePosixPath("python/lib/python3.11"),))
    report = apply_relocation(dataclasses.replace(plan, pyc=step), patchelf=FakePatchelf(),
                              compiler=None)
    assert asked == [(app, PurePosixPath("python/bin/python3.11"), "3.9")]
    assert chosen.calls == [(app, (app / "python/lib/python3.11",))]
    assert report.pycs == 2
    assert f"{SITE}/pip/__init__.py: does not compile, left without .pyc" in report.warnings


def test_failures_and_plan_warnings_are_one_sorted_list(
        planned: tuple[Path, RelocationPlan]) -> None:
    _app, plan = planned

    class Failing(FakeCompiler):
        def compile(self, *, app_root: Path, dirs: tuple[Path, ...]) -> PycResult:
            return PycResult(compiled=1, failed=("zz.py", "aa.py"))

    plan = dataclasses.replace(plan, warnings=("m warning", "aa.py: does not compile, left "
                                                "without .pyc"))
    report = apply_relocation(plan, patchelf=FakePatchelf(), compiler=Failing())
    assert report.warnings == ("aa.py: does not compile, left without .pyc", "m warning",
                               "zz.py: does not compile, left without .pyc")


def test_record_keeps_its_mode_and_skips_symlinked_rows(
        planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    (app / HELLO_RECORD).chmod(0o600)
    apply_relocation(plan, patchelf=FakePatchelf(), compiler=FakeCompiler())
    assert stat.S_IMODE((app / HELLO_RECORD).stat().st_mode) == 0o600


def test_a_rehashed_file_that_became_a_symlink_loses_its_row(tmp_path: Path) -> None:
    # the binary is patched by a fake that replaces it with a symlink: RECORD cannot hash it
    staging = tmp_path / "s"
    app, reader = demo_app(staging)
    plan = plan_relocation(app, final_root=FINAL, staging_root=staging, expose=(),
                           elf_reader=reader)

    class Relinking(FakePatchelf):
        def set_rpath(self, path: Path, rpath: str) -> None:
            path.unlink()
            path.symlink_to(app / "python/bin/python3.11")

    apply_relocation(plan, patchelf=Relinking(), compiler=FakeCompiler())
    record = (app / HELLO_RECORD).read_text()
    assert "pkg/_ext.so" not in record
    assert "hello/__init__.py," in record


def test_a_writable_binary_keeps_its_mode(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    (app / EXT).chmod(0o640)
    seen: list[int] = []

    class Recording(FakePatchelf):
        def set_rpath(self, path: Path, rpath: str) -> None:
            seen.append(stat.S_IMODE(path.stat().st_mode))
            path.chmod(0o600)  # patchelf's own write

    apply_relocation(plan, patchelf=Recording(), compiler=FakeCompiler())
    assert seen == [0o640]
    assert stat.S_IMODE((app / EXT).stat().st_mode) == 0o600  # not reset: it was writable


def test_an_rpath_tag_emptied_is_removed_with_set_rpath(tmp_path: Path) -> None:
    staging = tmp_path / "s"
    app, reader = demo_app(staging)
    reader.infos[EXT] = elf_info(rpath=("/usr/lib",))
    plan = plan_relocation(app, final_root=FINAL, staging_root=staging, expose=(),
                           elf_reader=reader)
    assert [(e.path, e.tag, e.new) for e in plan.rpaths] == [
        (PurePosixPath(EXT), RpathTag.RPATH, ())]
    patchelf = FakePatchelf(app=app)
    apply_relocation(plan, patchelf=patchelf, compiler=FakeCompiler())
    assert patchelf.calls == [("set", EXT, "")]


def test_several_entries_are_joined_with_colons(planned: tuple[Path, RelocationPlan]) -> None:
    app, plan = planned
    (edit,) = plan.rpaths
    many = dataclasses.replace(edit, tag=RpathTag.RPATH, new=("$ORIGIN", "$ORIGIN/../lib"))
    patchelf = FakePatchelf(app=app)
    apply_relocation(dataclasses.replace(plan, rpaths=(many,)), patchelf=patchelf,
                     compiler=FakeCompiler())
    assert patchelf.calls == [("force", EXT, "$ORIGIN:$ORIGIN/../lib")]
