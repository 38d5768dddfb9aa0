"""Trampolines run by ``/bin/sh`` from nested directories, odd script headers, search paths
at the tree's edge, a needed name with a slash, RECORDs behind a dist-info without one."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest
from relocate_factories import (
    EXT,
    FAKE_ELF,
    SITE,
    FakeElfReader,
    console_script,
    demo_app,
    elf_info,
    write,
)

from builder.elf import ElfInfo
from builder.errors import BuilderError, InternalError
from builder.relocate import plan_relocation
from builder.relocate.elfplan import Roots, plan_elves, plan_rpath, unresolved_needed
from builder.relocate.scripts import parse_python_script, render_trampoline

P = PurePosixPath
FAKE_PYTHON = b'#!/bin/sh\necho "python $0 $*"\n'


@pytest.mark.parametrize("script", ["tool", "bin/tool", "share/x/tool", "a/b/c/d/tool"])
def test_a_trampoline_finds_the_interpreter_from_any_depth(tmp_path: Path,
                                                          script: str) -> None:
    app = tmp_path / "my app"
    write(app / "python/bin/python3.11", FAKE_PYTHON, 0o755)
    text = render_trampoline(script=P(script), interpreter=P("python/bin/python3.11"),
                             flags=("-s",), body=b"print('body')\n")
    write(app / script, text, 0o755)
    (tmp_path / "link").symlink_to(app / script)  # run through a symlink, from elsewhere
    out = subprocess.run([str(tmp_path / "link"), "x y"], capture_output=True, text=True,
                         check=True, cwd="/", env={"PATH": "/usr/bin:/bin"}).stdout
    assert out == f"python {app}/python/bin/python3.11 -s {tmp_path}/link x y\n"


@pytest.mark.parametrize("interpreter", ["python/bin/py thon", "python/bin/py$x", "."])
def test_an_interpreter_path_the_shell_would_mangle_is_refused(interpreter: str) -> None:
    with pytest.raises(InternalError) as info:
        render_trampoline(script=P("bin/tool"), interpreter=P(interpreter), flags=(), body=b"")
    relative = ".." if interpreter == "." else "../" + interpreter  # "..": no file named
    assert info.value.what == (
        f"internal error: cannot express interpreter path {relative!r} in a trampoline")


def test_a_needed_name_with_a_slash_is_never_resolved_in_the_tree() -> None:
    # the dynamic linker takes it as a path (relative to the cwd), not as a name to search for
    files = {"python/lib/libs/libfoo.so", "python/lib/libfoo.so"}
    missing = unresolved_needed(P("python/lib/x.so"), ("libs/libfoo.so", "libfoo.so"),
                                ("python/lib",), files, set())
    assert missing == ("libs/libfoo.so",)


APP = "/tmp/stage-1/app"
DEEP = P("python/lib/python3.11/site-packages/pkg/_ext.so")  # five directories deep


@pytest.mark.parametrize("entry", [
    "$ORIGIN/../../../../../..",  # exactly the app root's parent
    "${ORIGIN}/../../../../../..",
    f"{APP}/$LIB",  # the loader expands $LIB: no fixed directory of the tree
    f"{APP}/python/${{PLATFORM}}",
])
def test_search_paths_leading_just_outside_or_expanded_are_removed(entry: str) -> None:
    edit = plan_rpath(elf_info(runpath=(entry, "$ORIGIN/../../../../..")), DEEP,
                      Roots(inside=(P(APP),)))
    assert edit is not None
    assert (edit.new, edit.removed) == (("$ORIGIN/../../../../..",), (entry,))


@pytest.mark.parametrize("data", [
    b"#!/bin/sh\n'''exec' /usr/bin/python3 \"$0\" \"$@\"\necho no closing line\n",
    b"#!/bin/sh\nexec /usr/bin/python3 \"$0\" \"$@\"\n' '''\n",
])
def test_a_sh_script_with_half_a_polyglot_header_is_not_python(data: bytes) -> None:
    # sh runs these lines as they are: not a python body behind a header
    assert parse_python_script(data) is None


def test_a_polyglot_header_naming_a_non_utf8_path_is_still_python() -> None:
    data = b"#!/bin/sh\n'''exec' '/tmp/caf\xe9/python3' \"$0\" \"$@\"\n' '''\nprint(1)\n"
    parsed = parse_python_script(data)
    assert parsed is not None
    assert parsed.shebang == "/tmp/caf\udce9/python3"  # the byte kept (surrogateescape)
    assert parsed.body == b"print(1)\n"


def test_a_polyglot_header_with_an_unbalanced_quote_is_shown_as_it_is() -> None:
    data = b"#!/bin/sh\n'''exec' '/tmp/a b/python3 \"$0\" \"$@\"\n' '''\nprint(1)\n"
    parsed = parse_python_script(data)
    assert parsed is not None
    assert parsed.shebang == "'/tmp/a b/python3 \"$0\" \"$@\""
    assert parsed.body == b"print(1)\n"


def test_a_dist_info_without_record_does_not_hide_the_next_records(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    (app / SITE / "aaa-1.0.dist-info").mkdir()  # sorted first, no RECORD
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=None, elf_reader=reader)
    assert [str(r.path) for r in plan.records] == [
        f"{SITE}/hello-1.0.dist-info/RECORD",
        f"{SITE}/pip-24.0.dist-info/RECORD",
        f"{SITE}/pip_tools-7.4.1.dist-info/RECORD",
    ]


def test_an_unreadable_elf_does_not_hide_the_next_ones(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)

    class Unreadable(FakeElfReader):
        def read(self, path: Path) -> ElfInfo | None:
            if path.name == "python3.11":
                raise BuilderError("cannot read ELF file: truncated", where=str(path))
            return super().read(path)

    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=None, elf_reader=Unreadable(app, reader.infos))
    assert [str(r.path) for r in plan.rpaths] == [EXT]  # read after the unreadable one
    assert "python/bin/python3.11: unreadable ELF file left unchanged (cannot read ELF file: "\
        "truncated)" in plan.warnings


def test_every_clashing_trampoline_is_listed(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    write(app / "bin/hello", b"")
    write(app / "bin/hello-admin", b"")
    with pytest.raises(BuilderError) as info:
        plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                        expose=None, elf_reader=reader)
    assert info.value.what == (
        "conflicting relocation edits:\n"
        "  bin/hello: trampoline for 'hello' would replace an existing file\n"
        "  bin/hello-admin: trampoline for 'hello-admin' would replace an existing file")


@pytest.mark.parametrize(("data", "shebang", "flags", "body"), [
    (b"#!/usr/bin/python3", "/usr/bin/python3", (), b""),  # no newline: no body
    (b"#!/tmp/caf\xe9/python3\nx\n", "/tmp/caf\udce9/python3", (), b"x\n"),
    (b"#!/usr/bin/python3 -s 'x\nx\n", "/usr/bin/python3 -s 'x", ("-s",), b"x\n"),  # no shlex
    (b"#!/usr/bin/env PYTHONX=1 python3\nx\n", "/usr/bin/env PYTHONX=1 python3", (), b"x\n"),
    (b"#!/bin/sh\r\n'''exec' '/tmp/py/python3' \"$0\" \"$@\"\r\n' '''\r\nx\r\n",
     "/tmp/py/python3", (), b"x\r\n"),  # CRLF
])
def test_odd_python_shebangs_are_recognised(data: bytes, shebang: str, flags: tuple[str, ...],
                                            body: bytes) -> None:
    parsed = parse_python_script(data)
    assert parsed is not None
    assert (parsed.shebang, parsed.flags, parsed.body) == (shebang, flags, body)


@pytest.mark.parametrize("end", [b"' ''' ", b"' '''X", b"' '''\t"])
def test_a_polyglot_header_must_end_exactly(end: bytes) -> None:
    data = b"#!/bin/sh\n'''exec' '/tmp/py/python3' \"$0\" \"$@\"\n" + end + b"\nx\n"
    assert parse_python_script(data) is None


def test_without_the_interpreter_among_the_elves_nothing_is_preloaded() -> None:
    infos = {P("python/lib/x.so"): elf_info(needed=("libfoo.so.1", "libc.so.6"))}
    edits, warnings = plan_elves(infos, files=set(), roots=Roots(inside=(P(APP),)),
                                 interpreter=P("python/bin/python3.11"))
    assert edits == ()
    assert warnings == (
        "python/lib/x.so: needed library libfoo.so.1 is neither in the tree nor a system one",)


def test_a_symlinked_directory_is_a_file_of_the_tree(tmp_path: Path) -> None:
    # REQUESTED as a symlink to a directory: still install-time metadata, still removed
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    requested = app / SITE / "pip_tools-7.4.1.dist-info/REQUESTED"
    requested.unlink()
    requested.symlink_to(tmp_path)
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=None, elf_reader=reader)
    assert P(f"{SITE}/pip_tools-7.4.1.dist-info/REQUESTED") in plan.removals


def test_only_real_dist_info_directories_lose_their_metadata(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    write(app / SITE / "hello/REQUESTED", b"a data file of the package\n")
    write(tmp_path / "elsewhere/x-1.0.dist-info/REQUESTED", b"")
    (app / SITE / "x-1.0.dist-info").symlink_to(tmp_path / "elsewhere/x-1.0.dist-info")
    write(app / SITE / "y.dist-info", b"a file, not a directory\n")
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=None, elf_reader=reader)
    assert [str(p) for p in plan.removals] == [
        f"{SITE}/hello-1.0.dist-info/REQUESTED",
        f"{SITE}/hello-1.0.dist-info/direct_url.json",
        f"{SITE}/pip_tools-7.4.1.dist-info/REQUESTED",
    ]


def test_a_tree_without_one_python_lib_says_where_and_what_to_do(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "python/bin").mkdir(parents=True)
    with pytest.raises(BuilderError) as info:
        plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=tmp_path,
                        expose=None, elf_reader=FakeElfReader(app))
    assert info.value.where == str(app)
    assert info.value.hint == (
        "relocate runs on a staged tree with a python-build-standalone layout")


def test_a_tree_without_an_interpreter_says_where(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "python/bin").mkdir(parents=True)
    (app / "python/lib/python3.11").mkdir(parents=True)
    (app / "python/bin/PYTHON3").symlink_to("nowhere")
    with pytest.raises(BuilderError) as info:
        plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=tmp_path,
                        expose=None, elf_reader=FakeElfReader(app))
    assert info.value.what == "no interpreter python/bin/python3.11 in the staged tree"
    assert info.value.where == str(app)


def test_python3_is_the_interpreter_when_python3_x_is_missing(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, _reader = demo_app(staging)
    (app / "python/bin/python3").unlink()
    (app / "python/bin/python3.11").rename(app / "python/bin/python3")
    console_script(app, "tool")
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=(), elf_reader=FakeElfReader(app))
    assert plan.interpreter == P("python/bin/python3")
    assert {s.interpreter for s in plan.scripts} == {P("python/bin/python3")}


def test_every_python_script_in_python_bin_is_edited(tmp_path: Path) -> None:
    # a non-python script and the interpreter (an ELF) sort before python scripts
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    write(app / "python/bin/aaa", b"#!/bin/sh\necho\n", 0o755)
    console_script(app, "zzz")
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=(), elf_reader=reader)
    assert [s.path.name for s in plan.scripts] == [
        "hello", "hello-admin", "pip-compile", "pip3", "pydoc3", "zzz"]


def test_a_missing_app_tree_or_a_relative_final_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuilderError) as info:
        plan_relocation(tmp_path / "app", final_root=P("/opt/apps/demo"), staging_root=tmp_path,
                        expose=None)
    assert (info.value.what, info.value.where) == ("staged app tree not found",
                                                   str(tmp_path / "app"))
    with pytest.raises(BuilderError) as info:
        plan_relocation(tmp_path / "app", final_root=P("opt/x"), staging_root=tmp_path,
                        expose=None)
    assert info.value.what == "final root opt/x must be an absolute path"


def test_search_paths_through_the_given_path_and_its_real_path_are_both_inside(
        tmp_path: Path) -> None:
    real = tmp_path / "real"
    app, reader = demo_app(real)
    (tmp_path / "link").symlink_to(real)
    given = tmp_path / "link" / "app"
    reader.app = given
    reader.infos[EXT] = elf_info(runpath=(f"{given}/python/lib", f"{app}/python/lib/x"))
    plan = plan_relocation(given, final_root=P("/opt/apps/demo"), staging_root=tmp_path / "link",
                           expose=None, elf_reader=reader)
    (edit,) = plan.rpaths
    assert (edit.new, edit.removed) == (("$ORIGIN/../../..", "$ORIGIN/../../../x"), ())


def test_libraries_the_interpreter_loads_from_the_tree_resolve_for_extensions(
        tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    write(app / "python/lib/libpython3.11.so.1.0", FAKE_ELF)
    reader.infos["python/bin/python3.11"] = elf_info(
        needed=("libpython3.11.so.1.0", "libc.so.6"), runpath=("$ORIGIN/../lib",))
    reader.infos["python/lib/libpython3.11.so.1.0"] = elf_info(needed=("libc.so.6",))
    reader.infos[EXT] = elf_info(needed=("libpython3.11.so.1.0",))  # no search path of its own
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=None, elf_reader=reader)
    assert plan.staging_root == staging
    assert not [w for w in plan.warnings if "needed library" in w]


def test_search_paths_naming_the_final_location_are_inside(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    reader.infos[EXT] = elf_info(runpath=("/opt/apps/demo/python/lib",))
    plan = plan_relocation(app, final_root=P("/opt/apps/demo"), staging_root=staging,
                           expose=None, elf_reader=reader)
    (edit,) = plan.rpaths
    assert (edit.new, edit.removed) == (("$ORIGIN/../../..",), ())
