"""Build steps with a tiny fake app tree and sh / the host's python as the commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.steps import ChangeKind, StepsReport, run_build_steps
from builder.steps.compare import first_difference
from builder.steps.run import FAILED_HINT, NOT_REPRODUCIBLE_HINT


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """app/python/bin with a `python3` (the host's) and a console script; some data."""
    root = tmp_path / "stage" / "bundle" / "app"
    bin_dir = root / "python" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    tool = bin_dir / "mytool"
    tool.write_text('#!/bin/sh\necho "mytool ran in $PWD"\n')
    tool.chmod(0o755)
    (root / "share").mkdir()
    (root / "share" / "keep.txt").write_text("kept\n")
    (root / "share" / "old.txt").write_text("old\n")
    return root


def sh(script: str) -> tuple[str, ...]:
    return ("sh", "-c", script)


def steps(app: Path, *argvs: tuple[str, ...], log: list[str] | None = None,
          timeout: float = 60) -> StepsReport:
    return run_build_steps(argvs, app=app, python_bin=app / "python" / "bin",
                           source_date_epoch=1700000000, where="r.toml",
                           log=(log if log is not None else []).append, timeout=timeout,
                           scratch=app.parent.parent, offline=False)


def test_no_steps_do_nothing(app: Path) -> None:
    report = steps(app)
    assert report.steps == () and report.origins() == {}


def test_steps_run_in_order_in_the_app_root_and_report_what_they_wrote(app: Path) -> None:
    log: list[str] = []
    report = steps(app, sh("echo one > share/a.txt"), sh("cat share/a.txt > share/b.txt; "
                                                        "echo two >> share/a.txt"),
                   ("mytool",), log=log)
    assert (app / "share" / "a.txt").read_text() == "one\ntwo\n"
    assert (app / "share" / "b.txt").read_text() == "one\n"
    assert [s.index for s in report.steps] == [1, 2, 3]
    assert report.steps[0].written == ("share/a.txt",)
    assert report.steps[1].written == ("share/a.txt", "share/b.txt")
    assert report.steps[2].written == ()
    assert report.origins() == {
        "share/a.txt": "written by build step 2 (sh -c cat share/a.txt > share/b.txt; echo two "
                       ">> share/a.txt)",
        "share/b.txt": "written by build step 2 (sh -c cat share/a.txt > share/b.txt; echo two "
                       ">> share/a.txt)",
    }
    assert any(line.startswith("build steps: copied the app") for line in log)
    assert [line.split(":")[0] for line in log[1:]] == [
        "build step 1 (sh -c echo one > share/a.txt)",
        "build step 2 (sh -c cat share/a.txt > share/b.txt; echo two >> share/a.txt)",
        "build step 3 (mytool)"]
    assert log[1].endswith("s, 1 file written (second run " + log[1].split("(second run ")[1])
    # nothing of the second tree is left beside the app
    assert sorted(p.name for p in app.parent.parent.iterdir()) == ["bundle"]


def test_the_environment(app: Path, tmp_path: Path) -> None:
    """Written outside the app (HOME differs between the two runs): env-0.json is the first."""
    out = tmp_path / "probe"
    out.mkdir()
    probe = ("python3", "-c", "import os, sys, json; out = sys.argv[1]; json.dump("
             "{k: os.environ.get(k) for k in ('PATH', 'HOME', 'TMPDIR', 'SOURCE_DATE_EPOCH', "
             "'PYTHONPATH', 'PIP_INDEX_URL')} | {'cwd': os.getcwd(), 'python': sys.executable}, "
             "open(f'{out}/env-{len(os.listdir(out))}.json', 'w'))", str(out))
    os.environ["PIP_INDEX_URL"] = "http://leak.invalid"
    try:
        steps(app, probe)
    finally:
        del os.environ["PIP_INDEX_URL"]
    import json
    env = json.loads((out / "env-0.json").read_text())
    assert env["PATH"] == f"{app}/python/bin:/usr/local/bin:/usr/bin:/bin"
    assert env["cwd"] == str(app) and env["python"] == f"{app}/python/bin/python3"
    assert env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert env["PIP_INDEX_URL"] is None and env["PYTHONPATH"] is None
    home = Path(env["HOME"])
    assert env["TMPDIR"] == str(home / "tmp")
    assert not home.exists()  # removed
    # made inside the staging directory (scratch), which the next run collects after a SIGKILL
    assert home.parent.parent == app.parent.parent
    second = json.loads((out / "env-1.json").read_text())
    assert second["cwd"] != str(app) and second["cwd"].endswith("/app")
    assert second["HOME"] != env["HOME"]
    assert Path(second["HOME"]).parent.parent == app.parent.parent


def test_a_failing_step_names_itself_and_shows_its_output(app: Path) -> None:
    with pytest.raises(BuilderError) as info:
        steps(app, sh("true"), sh("echo starting; echo broken >&2; exit 3"), sh("touch never"))
    assert str(info.value) == (
        "r.toml: build.steps[1]: build step 2 "
        "failed (exit code 3): sh -c echo starting; echo broken >&2; exit 3\n"
        "  | starting\n"
        "  | broken\n"
        f"  hint: {FAILED_HINT}")
    assert not (app / "never").exists()


def test_a_missing_command_is_refused(app: Path) -> None:
    with pytest.raises(BuilderError) as info:
        steps(app, sh("touch ran"), ("no-such-tool", "x"))
    assert str(info.value).startswith(
        "r.toml: build.steps[1]: build step 2 (no-such-tool x): 'no-such-tool' is not a command "
        "on the bundle's PATH (python/bin, /usr/local/bin, /usr/bin, /bin)\n  hint: ")
    assert (app / "ran").exists()  # step 1 ran: step 2's program might have been made by it
    with pytest.raises(BuilderError, match=r"'share/keep.txt' is not an executable file at "
                       r"that path inside the app"):
        steps(app, ("share/keep.txt",))


def test_a_relative_path_inside_the_app_runs_even_when_a_step_made_it(app: Path) -> None:
    report = steps(app, sh("printf '#!/bin/sh\\necho made > share/made.txt\\n' > share/setup.sh; "
                           "chmod 755 share/setup.sh"), ("share/setup.sh",))
    assert report.steps[0].written == ("share/setup.sh",)
    assert report.steps[1].written == ("share/made.txt",)
    assert (app / "share" / "made.txt").read_text() == "made\n"


@pytest.mark.parametrize("script", [
    "date +%s%N > share/stamp.txt",
    "head -c 32 /dev/urandom > share/random.bin",
])
def test_a_non_reproducible_step_is_caught_naming_the_file(app: Path, script: str) -> None:
    with pytest.raises(BuilderError) as info:
        steps(app, sh("echo fine > share/fine.txt"), sh(f"echo writing; {script}"))
    text = str(info.value)
    name = script.split("> ")[1]
    command = " ".join(sh(f"echo writing; {script}"))
    assert text.startswith(f"r.toml: build.steps[1]: build step 2 ({command}) is not "
                           "reproducible: run again in a copy of the app at another path, "
                           f"it left 1 file different:\n  {name}: ")
    assert "  | writing" in text and text.endswith(f"hint: {NOT_REPRODUCIBLE_HINT}")


def test_the_difference_is_shown(app: Path) -> None:
    with pytest.raises(BuilderError) as info:
        steps(app, ("python3", "-c", "import os; open('share/c.json', 'w').write("
                    "'{\\n \"a\": 1,\\n \"run\": %d\\n}\\n' % "
                    "(1 if os.getcwd().endswith('bundle/app') else 2))"))
    line = str(info.value).splitlines()[1]
    assert line == ("  share/c.json: line 3, column 9: ' \"run\": 1' vs ' \"run\": 2' "
                    "(23 bytes each)")


def test_identical_runs_pass_even_when_they_write_their_own_location(app: Path) -> None:
    report = steps(app, ("python3", "-c", "import os, sys; open('share/where.txt', 'w')"
                         ".write(os.getcwd() + ' ' + sys.prefix)"))
    assert report.steps[0].written == ("share/where.txt",)  # relocation's scan judges this


def test_a_step_removing_a_file(app: Path) -> None:
    report = steps(app, sh("rm share/old.txt"))
    assert not (app / "share" / "old.txt").exists()
    assert [(c.path, c.kind) for c in report.steps[0].changes] == [
        ("share/old.txt", ChangeKind.REMOVED)]
    assert report.origins() == {}
    with pytest.raises(BuilderError, match=r"share/keep.txt: a file in the first run, nothing "
                       r"in the second"):
        steps(app, sh('case "$PWD" in */bundle/app) ;; *) rm share/keep.txt ;; esac'))


def test_modes_and_symlinks(app: Path) -> None:
    report = steps(app, sh("ln -s keep.txt share/link; ln -s \"$PWD/share/keep.txt\" share/abs;"
                           " chmod 0755 share/keep.txt"))
    assert report.steps[0].written == ("share/abs", "share/keep.txt", "share/link")
    assert (app / "share" / "link").readlink() == Path("keep.txt")
    with pytest.raises(BuilderError, match=r"share/dangling: links to '\d+' in the first run"):
        steps(app, sh("ln -s $$ share/dangling"))
    with pytest.raises(BuilderError, match=r"share/x: mode 0644 in the first run, 0755 in the "
                       r"second"):
        steps(app, sh('touch share/x; case "$PWD" in */bundle/app) ;; *) chmod 755 share/x;; '
                      'esac'))


def test_a_step_failing_only_in_the_copy(app: Path) -> None:
    with pytest.raises(BuilderError) as info:
        steps(app, sh('case "$PWD" in */bundle/app) ;; *) echo elsewhere; exit 4 ;; esac'))
    assert "run again in a copy of the app at another path, passed the first time but " \
           "failed (exit code 4)" in str(info.value)
    assert "  | elsewhere" in str(info.value)


def test_a_step_past_its_bound_is_stopped(app: Path) -> None:
    with pytest.raises(BuilderError, match=r"build step 1 did not finish within \d+ s: sleep 30"):
        steps(app, ("sleep", "30"), timeout=0.5)


def test_a_rewrite_with_equal_size_and_times_is_seen(app: Path) -> None:
    """Two quick steps rewriting one file with bytes of the same length (racy timestamps)."""
    report = steps(app, sh("echo aaaa > share/keep.txt"), sh("echo bbbb > share/keep.txt"))
    assert report.steps[1].written == ("share/keep.txt",)


@pytest.mark.parametrize(("a", "b", "expected"), [
    (b"x\ny\n", b"x\nz\n", "line 2, column 1: 'y' vs 'z' (4 bytes each)"),
    (b"x\n", b"x\ny\n", "line 2 only in the second run: 'y' (2 bytes vs 4)"),
    (b"\0\1\2", b"\0\1\3", "byte 2: 02 vs 03 (3 bytes each)"),
    (b"x\n", b"x\r\n", "byte 1: 0a vs 0d 0a (2 bytes vs 3)"),
    (b"{" + b'"k": 1, ' * 20 + b'"t": 5}', b"{" + b'"k": 1, ' * 20 + b'"t": 6}',
     "line 1, column 167: '...k\": 1, \"k\": 1, \"t\": 5}' vs "
     "'...k\": 1, \"k\": 1, \"t\": 6}' (168 bytes each)"),
])
def test_first_difference(a: bytes, b: bytes, expected: str) -> None:
    assert first_difference(a, b) == expected


def test_console_scripts_in_the_copy_work_on_the_copy(app: Path) -> None:
    """Installed scripts name the staged interpreter by its absolute path; in the second tree
    they must run the second tree's python (else that run would write into the app)."""
    script = app / "python" / "bin" / "mark"
    script.write_text(f"#!{app}/python/bin/python3\nimport sys, pathlib\n"
                      "root = pathlib.Path(sys.executable).parents[2]\n"
                      "(root / 'share' / 'marked.txt').write_text('marked\\n')\n")
    script.chmod(0o755)
    report = steps(app, ("mark",))
    assert report.steps[0].written == ("share/marked.txt",)
    assert script.read_text().startswith(f"#!{app}/python/bin/python3\n")  # the app's untouched


def test_a_step_writing_into_the_app_from_the_copy_is_caught(app: Path) -> None:
    with pytest.raises(BuilderError) as info:
        steps(app, sh(f"date +%s%N > {app}/share/escaped.txt"))
    assert ("build step 1 (sh -c date +%s%N > " in str(info.value)
            and "run again in a copy of the app at another path, changed the app itself: "
            "share/escaped.txt\n" in str(info.value))
