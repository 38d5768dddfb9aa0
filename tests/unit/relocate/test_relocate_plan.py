from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path, PurePosixPath

import pytest
from relocate_factories import EXT, FakeElfReader, console_script, demo_app, make_app, write

from builder.errors import BuilderError
from builder.fsutil import canonical_json
from builder.relocate import RelocationPlan, check_conflicts, plan_relocation, plan_to_dict

FINAL = PurePosixPath("/opt/apps/demo")
GOLDEN = Path(__file__).parent / "golden" / "plan.json"


def plan_of(
    staging: Path, *, expose: tuple[str, ...] | None = None, reader: FakeElfReader | None = None
) -> RelocationPlan:
    return plan_relocation(
        staging / "app", final_root=FINAL, staging_root=staging, expose=expose, elf_reader=reader
    )


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, FakeElfReader]:
    staging = tmp_path / "builder-stage-1"
    _app, reader = demo_app(staging)
    return staging, reader


def test_plan_matches_golden(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    text = canonical_json(plan_to_dict(plan_of(staging, reader=reader)))
    if os.environ.get("BUILDER_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_plan_data_does_not_depend_on_the_staging_dir(tmp_path: Path) -> None:
    plans = []
    for name in ("a", "stage with space"):
        _app, reader = demo_app(tmp_path / name)
        plans.append(canonical_json(plan_to_dict(plan_of(tmp_path / name, reader=reader))))
    assert plans[0] == plans[1]
    assert str(tmp_path) not in plans[0]


def test_only_python_shebang_scripts_are_edited(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    assert [str(s.path) for s in plan.scripts] == [
        "python/bin/hello",
        "python/bin/hello-admin",
        "python/bin/pip-compile",
        "python/bin/pip3",
        "python/bin/pydoc3",
    ]
    assert {str(s.interpreter) for s in plan.scripts} == {"python/bin/python3.11"}
    assert plan.scripts[0].shebang == f"{staging}/app/python/bin/python3"


def test_default_exposes_package_scripts_only(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    # pip3 (owned by pip) and pydoc3 (the interpreter's) stay hidden; pip-tools' pip-compile not
    assert [(t.name, str(t.path), str(t.source)) for t in plan.trampolines] == [
        ("hello", "bin/hello", "python/bin/hello"),
        ("hello-admin", "bin/hello-admin", "python/bin/hello-admin"),
        ("pip-compile", "bin/pip-compile", "python/bin/pip-compile"),
    ]
    assert plan.trampolines[0].body == plan.scripts[0].body


def test_expose_selects_names(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, expose=("pip3", "hello", "hello"), reader=reader)
    assert [t.name for t in plan.trampolines] == ["hello", "pip3"]
    assert plan_of(staging, expose=(), reader=reader).trampolines == ()


def test_expose_unknown_names_is_an_error(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    with pytest.raises(BuilderError) as info:
        plan_of(staging, expose=("hello", "nope", "tool.sh", "python3.11"), reader=reader)
    assert str(info.value) == (
        f"{staging}/app: cannot expose nope, python3.11 (not a python script), tool.sh (not a "
        "python script): no such console script in python/bin\n"
        "  hint: console scripts available: hello, hello-admin, pip-compile, pip3, pydoc3"
    )


def test_a_dist_info_without_record_does_not_hide_the_next_ones(
        demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    (staging / "app/python/lib/python3.11/site-packages/aaa-1.0.dist-info").mkdir()
    plan = plan_of(staging, reader=reader)
    assert "pip-compile" in [t.name for t in plan.trampolines]  # pip-tools' RECORD still read


def test_a_malformed_record_is_named(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    record = staging / "app/python/lib/python3.11/site-packages/pip_tools-7.4.1.dist-info/RECORD"
    lines = record.read_text().count("\n")
    with record.open("a") as fh:
        fh.write("two,fields\n")
    with pytest.raises(BuilderError) as info:
        plan_of(staging, reader=reader)
    assert str(info.value) == f"{record}: line {lines + 1}: expected 3 fields, found 2"


def test_expose_without_any_console_script_says_none(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    make_app(staging)
    with pytest.raises(BuilderError) as info:
        plan_of(staging, expose=("hello",))
    assert str(info.value).endswith("hint: console scripts available: none")


def test_metadata_removals_and_record_updates(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    site = "python/lib/python3.11/site-packages"
    assert [str(p) for p in plan.removals] == [
        f"{site}/hello-1.0.dist-info/REQUESTED",
        f"{site}/hello-1.0.dist-info/direct_url.json",
        f"{site}/pip_tools-7.4.1.dist-info/REQUESTED",
    ]
    assert [(str(r.path), r.drop, r.rehash) for r in plan.records] == [
        (
            f"{site}/hello-1.0.dist-info/RECORD",
            ("hello-1.0.dist-info/REQUESTED", "hello-1.0.dist-info/direct_url.json"),
            ("../../../bin/hello", "../../../bin/hello-admin", "pkg/_ext.so"),
        ),
        (f"{site}/pip-24.0.dist-info/RECORD", (), ("../../../bin/pip3",)),
        (
            f"{site}/pip_tools-7.4.1.dist-info/RECORD",
            ("pip_tools-7.4.1.dist-info/REQUESTED",),
            ("../../../bin/pip-compile",),
        ),
    ]


def test_rpath_edit_and_warning(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    assert [(str(r.path), r.old, r.new, r.removed) for r in plan.rpaths] == [
        (EXT, (f"{staging}/app/python/lib", "/usr/lib64"), ("$ORIGIN/../../..",), ("/usr/lib64",)),
    ]
    assert plan.warnings == (
        f"{EXT}: removed search path entry '/usr/lib64' (outside the app tree)",
    )


def test_plan_is_frozen_and_pyc_covers_the_whole_lib(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.scripts = ()  # type: ignore[misc]
    assert plan.pyc is not None
    assert (plan.pyc.python_minor, [str(d) for d in plan.pyc.dirs]) == (
        "3.11",
        ["python/lib/python3.11"],
    )
    assert plan.needles == (str(staging),)


def test_symlinked_staging_dir_adds_its_realpath(tmp_path: Path) -> None:
    real = tmp_path / "real"
    make_app(real)
    (tmp_path / "link").symlink_to(real)
    plan = plan_of(tmp_path / "link", reader=FakeElfReader(real / "app"))
    assert plan.needles == (str(tmp_path / "link"), str(real))


def test_trampoline_clashing_with_an_existing_file(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    write(staging / "app" / "bin" / "hello", b"#!/bin/sh\n")
    with pytest.raises(BuilderError) as info:
        plan_of(staging, reader=reader)
    assert str(info.value) == (
        f"{staging}/app: conflicting relocation edits:\n"
        "  bin/hello: trampoline for 'hello' would replace an existing file\n"
        "  hint: rename or remove the clashing files, or choose other names to expose"
    )


def test_two_edits_to_one_file_conflict(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    bad = dataclasses.replace(plan, removals=(*plan.removals, plan.scripts[0].path))
    with pytest.raises(BuilderError, match=r"python/bin/hello: 2 edits"):
        check_conflicts(bad)


def test_future_import_after_docstring_warns(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    console_script(app, "odd", b'"""doc"""\nfrom __future__ import annotations\n')
    plan = plan_of(tmp_path, reader=FakeElfReader(app))
    assert plan.warnings == (
        "python/bin/odd: 'from __future__' after a docstring does not compile behind the "
        "trampoline's header",
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("nolib", "expected one python3.X directory in python/lib, found 0"),
        ("twolibs", "expected one python3.X directory in python/lib, found 2"),
        ("nointerp", "no interpreter python/bin/python3.11 in the staged tree"),
    ],
)
def test_unusable_trees(tmp_path: Path, setup: str, message: str) -> None:
    app = tmp_path / "app"
    (app / "python" / "bin").mkdir(parents=True)
    if setup != "nolib":
        (app / "python" / "lib" / "python3.11").mkdir(parents=True)
    if setup == "twolibs":
        (app / "python" / "lib" / "python3.12").mkdir(parents=True)
    with pytest.raises(BuilderError) as info:
        plan_of(tmp_path, reader=FakeElfReader(app))
    assert info.value.what == message


def test_final_root_must_be_absolute(tmp_path: Path) -> None:
    make_app(tmp_path)
    with pytest.raises(BuilderError, match="must be an absolute path"):
        plan_relocation(
            tmp_path / "app", final_root=PurePosixPath("opt/x"), staging_root=tmp_path, expose=None
        )


def test_golden_is_canonical_json() -> None:
    data = json.loads(GOLDEN.read_text())
    assert data["format_version"] == 1


def test_unreadable_elf_is_a_warning(tmp_path: Path) -> None:
    make_app(tmp_path)  # python3.11 is a fake ELF, read by the real reader here
    plan = plan_relocation(tmp_path / "app", final_root=FINAL, staging_root=tmp_path, expose=None)
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith(
        "python/bin/python3.11: unreadable ELF file left unchanged (cannot read ELF file: "
    )


def test_the_longest_staging_path_is_redacted_first(demo: tuple[Path, FakeElfReader]) -> None:
    """One needle inside another (a symlinked TMPDIR and its real path): the longer one is
    replaced whole, not the shorter one inside it."""
    staging, reader = demo
    plan = dataclasses.replace(plan_of(staging, reader=reader),
                               needles=("/private/tmp/s", "/tmp/s"),
                               warnings=("see /private/tmp/s/app and /tmp/s/x",))
    assert plan_to_dict(plan)["warnings"] == ["see <staging>/app and <staging>/x"]


def test_a_plan_without_a_pyc_step_says_so(demo: tuple[Path, FakeElfReader]) -> None:
    staging, reader = demo
    plan = plan_of(staging, reader=reader)
    assert plan.pyc is not None
    assert plan_to_dict(dataclasses.replace(plan, pyc=None))["pyc"] is None
