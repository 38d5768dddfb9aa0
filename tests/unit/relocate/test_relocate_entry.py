"""``builder.relocate.relocate`` (plan, apply, scan) and ``leftover_error`` on small real trees."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from relocate_factories import (
    EXT,
    SITE,
    FakeCompiler,
    FakePatchelf,
    console_script,
    demo_app,
    dist_info,
    make_app,
)

from builder.errors import BuilderError
from builder.relocate import MAX_LISTED, RelocationReport, ScanHit, leftover_error, relocate
from builder.relocate import plan as plan_module

FINAL = PurePosixPath("/opt/apps/demo")
PLAIN_HINT = (
    "these files would break once the bundle is moved; make the package that installs "
    "them relocatable, or report which edit relocation is missing"
)


def _app(staging: Path) -> Path:
    # a text file as interpreter: no ELF to read, so the real pyelftools reader has nothing to do
    app = make_app(staging)
    (app / "python/bin/python3.11").write_bytes(b"not an ELF\n")
    console_script(app, "hello")
    dist_info(app, "hello", "1.0", {"hello/__init__.py": b"def main():\n    pass\n"},
              installed=("../../../bin/hello",), extra={"REQUESTED": b""})
    return app


def test_relocate_plans_applies_and_scans(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app = _app(staging)
    compiler = FakeCompiler()
    report = relocate(app, final_root=FINAL, staging_root=staging, expose=None,
                      patchelf=FakePatchelf(), compiler=compiler)
    assert report == RelocationReport(scripts=1, trampolines=1, elfs=0, pycs=1, removed=1,
                                      records=1, warnings=())
    assert compiler.calls == [(app, (app / "python/lib/python3.11",))]
    assert (app / "bin/hello").is_file()
    assert str(staging) not in (app / "python/bin/hello").read_text()
    assert not (app / SITE / "hello-1.0.dist-info/REQUESTED").exists()


def test_relocate_patches_binaries_with_the_given_writer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = tmp_path / "stage"
    app, reader = demo_app(staging)
    # relocate() reads ELF files with pyelftools; the fake tree's binaries come from the fake
    monkeypatch.setattr(plan_module, "PyelftoolsReader", lambda: reader)
    patchelf = FakePatchelf(app=app)
    report = relocate(app, final_root=FINAL, staging_root=staging, expose=None,
                      patchelf=patchelf, compiler=FakeCompiler())
    assert report.elfs == 1
    assert patchelf.calls == [("set", EXT, "$ORIGIN/../../..")]


def test_relocate_expose_is_passed_on(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app = _app(staging)
    report = relocate(app, final_root=FINAL, staging_root=staging, expose=(),
                      patchelf=FakePatchelf(), compiler=FakeCompiler())
    assert report.trampolines == 0
    assert not (app / "bin").exists()


def test_relocate_refuses_a_tree_left_with_the_staging_path(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app = _app(staging)
    (app / "share").mkdir()
    (app / "share/a.cfg").write_text(f"root={staging}/app\n")
    (app / "share/b.cfg").write_text(f"root={staging}\n")
    with pytest.raises(BuilderError) as info:
        relocate(app, final_root=FINAL, staging_root=staging, expose=None,
                 patchelf=FakePatchelf(), compiler=FakeCompiler(),
                 origins={"share/a.cfg": "written by build step 1 (x)"})
    assert info.value.what == (
        f"2 files still contain the staging path ({staging}) after relocation:\n"
        "  share/a.cfg (written by build step 1 (x))\n"
        "  share/b.cfg"
    )
    assert info.value.where == str(app)
    assert info.value.hint == (
        "a build step wrote the path the app has during the build: make it write paths "
        "relative to the app, or compute them at run time; otherwise " + PLAIN_HINT
    )


def test_relocate_without_origins_gives_the_plain_hint(tmp_path: Path) -> None:
    staging = tmp_path / "stage"
    app = _app(staging)
    (app / "share").mkdir()
    (app / "share/a.cfg").write_text(f"root={staging}/app\n")
    with pytest.raises(BuilderError) as info:
        relocate(app, final_root=FINAL, staging_root=staging, expose=None,
                 patchelf=FakePatchelf(), compiler=FakeCompiler())
    assert info.value.what == (
        f"1 file still contains the staging path ({staging}) after relocation:\n  share/a.cfg"
    )
    assert info.value.hint == PLAIN_HINT


def test_leftover_error_one_file_two_needles() -> None:
    hits = (ScanHit(path=PurePosixPath("x"), needle="/b"),
            ScanHit(path=PurePosixPath("x"), needle="/a"))
    error = leftover_error(Path("/s/app"), hits, {"other": "written by build step 2 (y)"})
    assert error.what == (
        "1 file still contains the staging path (/a, /b) after relocation:\n  x")
    assert error.hint == PLAIN_HINT  # an origin for another file changes nothing
    assert error.where == "/s/app"


@pytest.mark.parametrize(
    ("count", "tail"), [(MAX_LISTED, ""), (MAX_LISTED + 1, "\n  ... and 1 more")])
def test_leftover_error_lists_twenty_then_counts(count: int, tail: str) -> None:
    assert MAX_LISTED == 20
    hits = tuple(ScanHit(path=PurePosixPath(f"f{i:02d}"), needle="/a") for i in range(count))
    error = leftover_error(Path("/s/app"), hits, {"f20": "written by build step 1 (z)"})
    listed = "".join(f"\n  f{i:02d}" for i in range(20))
    assert error.what == (
        f"{count} files still contain the staging path (/a) after relocation:{listed}{tail}")
    # f20 is not listed, but a build step wrote it: the hint says so
    assert error.hint is not None
    assert error.hint.startswith("a build step wrote") == (count > MAX_LISTED)
