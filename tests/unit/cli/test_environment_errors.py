"""Whatever the environment does (a file where a directory should be, a read-only directory, a
full disk, a FIFO or a device as recipe, duplicate keys, huge values), the user gets one
message with what, where and what to do, exit 1 and no traceback; checked before the work."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from factories import pure_wheel

import builder.lock.codec as codec
from builder.agent.source import MAX_SIDECAR_BYTES
from builder.cli.main import main
from builder.errors import environment_error
from builder.fetch.wheels import cache_path, fetch_packages
from builder.lock.model import LockedPackage
from builder.recipe import parse as recipe_parse

ROOT = Path(__file__).resolve().parents[3]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


# -- the output and cache directories, before any work -------------------------------------------


def test_out_that_is_a_file_is_refused_before_any_work(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "dist").write_text("")
    err = _run(capsys, "build", "recipes/tiny.toml", "--out", "dist")
    assert err == ("error: dist: output directory is not a directory\n"
                   "  hint: pass a writable directory with --out (default: dist/)\n")
    assert not (project / "cache").exists()  # nothing fetched, nothing imported


def test_out_below_a_file_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "file").write_text("")
    err = _run(capsys, "build", "recipes/tiny.toml", "--out", "file/dist/x")
    assert err == ("error: file/dist/x: cannot create the output directory: Not a directory\n"
                   "  hint: file is a file; pass a writable directory with --out (default: "
                   "dist/)\n")


@pytest.mark.parametrize("argv", [("build", "recipes/tiny.toml", "--out", "dist"),
                                  ("lock", "recipes/tiny.toml", "--lock-dir", "lockdir")])
def test_cache_that_is_a_file_is_refused_before_any_work(
        project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: tuple[str, ...]) -> None:
    """``lock`` too: pip's cache and the lock's scratch directories are in the cache."""
    (project / "cachefile").write_text("")
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(project / "cachefile"))
    err = _run(capsys, *argv)
    assert err == (f"error: {project / 'cachefile'}: cache directory is not a directory\n"
                   "  hint: make it a writable directory, or choose another one with "
                   "BUILDER_CACHE_DIR\n")


def test_a_lock_directory_that_is_a_file_is_refused_before_resolving(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "lockdir").write_text("")
    err = _run(capsys, "lock", "recipes/tiny.toml", "--lock-dir", "lockdir")
    assert err == ("error: lockdir: lock directory is not a directory\n"
                   "  hint: pass a writable directory with --lock-dir (default: "
                   "lockfiles/<name>)\n")
    assert not (project / "cache").exists()  # pip never ran


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to mode 0555 directories anyway "
                    "(the read-only mount case is in tests/integration/test_environment.py)")
def test_a_read_only_out_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "dist").mkdir(mode=0o555)
    err = _run(capsys, "build", "recipes/tiny.toml", "--out", "dist")
    assert "cannot write to the output directory: Permission denied" in err


def test_a_directory_the_probe_cannot_write_is_refused(
        project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The probe file is the check (root ignores mode bits: simulate the refusal there)."""
    import builder.pipeline.preflight as preflight

    def refuse(**kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied", str(kwargs.get("dir")))

    monkeypatch.setattr(preflight.tempfile, "mkstemp", refuse)
    (project / "dist").mkdir()
    err = _run(capsys, "build", "recipes/tiny.toml", "--out", "dist")
    assert err.startswith("error: dist: cannot write to the output directory: Permission denied")
    assert not (project / "cache").exists()
    err = _run(capsys, "build", "recipes/tiny.toml", "--out", "new/dist")
    assert err.startswith("error: new/dist: cannot create the output directory: Permission "
                          "denied")
    assert not (project / "new").exists()  # the check creates nothing


# -- OSErrors nobody anticipated: one message by errno --------------------------------------------


def test_a_full_disk_while_writing_is_a_message(
        project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    lock = project / "lockfiles" / "tiny" / "lock.json"
    before = lock.read_bytes()

    def full(path: Path, text: str, *, mode: int = 0o644) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(codec, "atomic_write_text", full)
    err = _run(capsys, "lock", "recipes/tiny.toml", "--upgrade")
    assert err.startswith("error: ") and ": No space left on device\n  hint: free some space" in err
    assert lock.read_bytes() == before


@pytest.mark.parametrize(("code", "hint"), [
    (errno.EROFS, "the file system is mounted read-only: choose another location"),
    (errno.ENOTDIR, "a file is where a directory is expected"),
    (errno.EACCES, "make it writable (or readable) for this user"),
    (errno.EIO, "check the path and its permissions"),
])
def test_environment_error_says_what_where_and_what_to_do(code: int, hint: str) -> None:
    error = environment_error(OSError(code, os.strerror(code), "/some/path"))
    assert (error.what, error.where) == (os.strerror(code), "/some/path")
    assert error.hint is not None and error.hint.startswith(hint)


# -- the recipe file ------------------------------------------------------------------------------


def test_a_fifo_as_recipe_is_refused_at_once(project: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fifo = project / "recipes" / "fifo.toml"
    os.mkfifo(fifo)  # opening it would block until a writer comes: it must not be opened
    # were it opened, this writer unblocks the reader after a while (and the test fails on
    # the message instead of hanging)
    writer = threading.Thread(target=_feed_if_read, args=(fifo,), daemon=True)
    writer.start()
    err = _run(capsys, "lock", str(fifo), "--check")
    assert err.startswith(f"error: {fifo}: recipe is not a regular file (a directory, FIFO or "
                          "device)")


def _feed_if_read(fifo: Path) -> None:
    for _ in range(50):  # 5 s: a reader would be waiting by then
        time.sleep(0.1)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it, as it should be
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write("not = 'a recipe'\n")
        return


def test_a_device_as_recipe_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = _run(capsys, "build", "/dev/zero")
    assert err.startswith("error: /dev/zero: recipe is not a regular file")


def test_an_oversized_recipe_is_refused_unread(project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    recipe = project / "recipes" / "tiny.toml"
    with recipe.open("a") as fh:
        fh.write("#" + "x" * recipe_parse.MAX_RECIPE_BYTES + "\n")
    err = _run(capsys, "lock", "recipes/tiny.toml", "--check")
    assert err.startswith("error: recipes/tiny.toml: recipe larger than 1 MiB")


def test_duplicate_keys_are_reported_with_their_line(project: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    recipe = project / "recipes" / "tiny.toml"
    text = recipe.read_text()
    recipe.write_text(text.replace('pbs_release = "20240107"\n',
                                   'pbs_release = "20240107"\npython = "3.12"\n'))
    line = recipe.read_text().splitlines().index('python = "3.12"') + 1
    err = _run(capsys, "lock", "recipes/tiny.toml", "--check")
    assert err.startswith(
        f"error: 1 problem found:\nrecipes/tiny.toml:{line}: TOML syntax error: Key \"python\" "
        "already exists. (each key may appear once per table)")


@pytest.mark.parametrize(("text", "line"), [
    ('a = 1\n[t]\nb = 1\nc = 2\nb = 3\n', 5),
    ('[t]\nb = 1\n[u]\nb = 1\n"b" = 2\n', 5),
    ('[[x]]\nb = 1\n[[x]]\nb = 2\n', None),  # not a duplicate: two tables of an array
    ('  [[x]]  # one\nb = 1\n  [[x]]\nb = 2\n', None),  # the same, indented, with a comment
    ("'b' = 1\nc = 1\n b = 2\n", 3),  # a literal-quoted key, an indented one
    ('b = 1\n[t] # the table t\nb = 2\n[u]\nc = 1\nc = 2\n', 6),
    ('[s]\nenv = "1"\n\n[s.env]\nB = "2"\n', 4),  # a key, then a table of its name
    ('[s]\nenv.A = "1"\n[s.env]\n', 3),  # a table a dotted key made, then its header
    ('env.A = "1"\n[env]\n', 2),  # the same at the top level
    ('[s]\nenv = "1"\n[s.other]\n[t.env]\n', None),  # other tables, other parents
    ('[s.env]\nB = "2"\n[s]\nenv2 = 1\n[u]\nenv = 1\n', None),  # [s] after [s.env]: fine
    ('[[a]]\nenv = 1\n[[a]]\nenv = 2\n', None),  # array tables start afresh
    ('[a]\nb.c = 1\n[a.b.c]\n', 3),  # b.c is the key c of a.b: no table a.b.c
    ('[a]\nb.c = 1\nb.d = 2\nb.c = 3\n', 4),  # a dotted key given twice
    ('[[x]]\nb = 1\nb = 2\n', 3),  # twice in one table of an array
    ('[[x]]\nb = 1\n[[x]]\nc = 1\nc = 2\n', 5),  # twice in its second table
    ('[s]\nb.c.d = 1\n[s.b.c]\n', 3),  # b.c.d made the table s.b.c (the key's last part is d)
])
def test_duplicate_key_line(text: str, line: int | None) -> None:
    assert recipe_parse.duplicate_key_line(text) == line


def test_oversized_values_are_reported(project: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    recipe = project / "recipes" / "tiny.toml"
    text = recipe.read_text()
    many = ", ".join(['"pyjokes==0.8.3"'] * (recipe_parse.MAX_ITEMS + 1))
    recipe.write_text(text.replace('summary = "A console script from one small pure-Python wheel"',
                                   f'summary = "{"s" * (recipe_parse.MAX_SUMMARY + 1)}"')
                      .replace('requirements = ["pyjokes==0.8.3"]', f"requirements = [{many}]"))
    err = _run(capsys, "lock", "recipes/tiny.toml", "--check")
    assert "recipes/tiny.toml:7: app.summary: too long: 1025 characters (at most 1024)" in err
    assert ("recipes/tiny.toml:14: packages.requirements: too many entries: 4097 (at most 4096)"
            in err)
    assert "hint: shorten these values" in err


def test_a_long_string_anywhere_is_reported() -> None:
    text = (ROOT / "recipes" / "tiny.toml").read_text().replace(
        '"pyjokes==0.8.3"', f'"pyjokes==0.8.3", "{"p" * (recipe_parse.MAX_STRING + 1)}"')
    with pytest.raises(recipe_parse.ValidationError) as info:
        recipe_parse.parse_recipe_text(text, path="r.toml")
    assert "packages.requirements[1]: too long: 4097 characters (at most 4096)" in str(info.value)


def test_the_largest_recipe_fits_in_the_sidecar_the_agent_accepts() -> None:
    """The manifest copies the recipe; JSON escapes a byte into at most 6."""
    assert 6 * recipe_parse.MAX_RECIPE_BYTES < MAX_SIDECAR_BYTES


def test_the_committed_recipes_are_within_the_bounds() -> None:
    for path in sorted((ROOT / "recipes").glob("*.toml")):
        recipe_parse.load_recipe(path)


# -- the wheel cache ------------------------------------------------------------------------------


def test_a_cached_wheel_replaced_by_a_directory_is_fetched_again(tmp_path: Path) -> None:
    wheel = pure_wheel(tmp_path / "src", "demo", "1.0", "x = 1\n")
    package = LockedPackage(name="demo", version="1.0", filename=wheel.name,
                            sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
                            via=("-r recipe",))
    cache = tmp_path / "cache"
    entry = cache_path(cache, package)
    (entry / "inside").mkdir(parents=True)  # a directory where the wheel should be
    calls: list[Sequence[str]] = []

    def pip(argv: Sequence[str], *, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        dest = Path(next(a for a in argv if a.startswith("--dest=")).split("=", 1)[1])
        dest.mkdir(parents=True)
        shutil.copy(wheel, dest / wheel.name)
        return subprocess.CompletedProcess(list(argv), 0, "", "")

    messages: list[str] = []
    paths = fetch_packages((package,), triple="x86_64-unknown-linux-gnu",
                           python_version="3.11.7", index_url="https://pypi.org/simple",
                           glibc_floor="2.17", cache_dir=cache, runner=pip,
                           log=messages.append)
    assert paths == (entry,) and entry.is_file() and len(calls) == 1
    assert messages[0] == (f"warning: the cache entry {entry} is not a regular file: removing "
                           "it to download the wheel again")
