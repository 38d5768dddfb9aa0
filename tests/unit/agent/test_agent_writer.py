"""The batch writer (issue 16.1): the C helper's system calls, the thread around it, and the
extraction's use of it (errors, a refusal midway, an object still being written)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_factories import (
    M,
    base_members,
    make_bundle,
    manifest_dict,
    manifest_member,
    raw_bundle,
)

from builder.agent import InstallOptions, NetAgentTransport, Store, install
from builder.agent import extract as extract_module
from builder.agent import writer as writer_module
from builder.agent.objects import STAMP
from builder.agent.source import resolve_source
from builder.agent.writer import NATIVE, BatchWriter
from builder.bundle.record import RECORD_FILE
from builder.errors import BuilderError

X86 = "x86_64-unknown-linux-gnu"
T = NetAgentTransport()

native = pytest.mark.skipif(NATIVE is None, reason="the C batch writer is not compiled here")


def _headers() -> bool:
    return (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()


def test_the_c_helper_is_compiled_wherever_a_compiler_is() -> None:
    """A machine with a C compiler and Python's headers gets the batch writer: a build that
    silently fell back to Python (``optional = true`` in pyproject.toml) fails here."""
    if shutil.which("cc") is None or not _headers():
        pytest.skip("no C compiler or no Python headers: the Python writer is the one used")
    assert NATIVE is not None
    assert extract_module.NATIVE is NATIVE


def _row(path: Path, data: Sequence[Any], mode: int = 0o644,
         obj: Path | None = None) -> tuple[bytes, int, tuple[Any, ...], bytes | None]:
    return (os.fsencode(path), mode, tuple(data), None if obj is None else os.fsencode(obj))


@native
def test_files_are_written_whole_with_their_mode_whatever_the_umask(tmp_path: Path) -> None:
    assert NATIVE is not None
    old = os.umask(0o077)
    try:
        rows = NATIVE((_row(tmp_path / "a", [b"one ", memoryview(b"two "), bytearray(b"three")]),
                       _row(tmp_path / "b", [b"x" * 100_000], mode=0o755),
                       _row(tmp_path / "empty", [])))
    finally:
        os.umask(old)
    assert (tmp_path / "a").read_bytes() == b"one two three"
    assert (tmp_path / "b").read_bytes() == b"x" * 100_000
    assert (tmp_path / "empty").read_bytes() == b""
    for name, mode, (disk_bytes, inode, error, link_error) in zip(
            ("a", "b", "empty"), (0o644, 0o755, 0o644), rows, strict=True):
        st = (tmp_path / name).lstat()
        assert stat.S_IMODE(st.st_mode) == mode
        assert (disk_bytes, inode, error, link_error) == (st.st_blocks * 512, st.st_ino, 0, 0)
        assert st.st_mtime > time.time() - 60  # not stamped: no object asked


@native
def test_the_system_calls_are_the_ones_intended(tmp_path: Path) -> None:
    """Seen by strace: each file is created with O_EXCL|O_NOFOLLOW and its final mode (no window
    in which it has another), fchmod only when a umask took bits away, the stamp set on the
    descriptor before the object link. (Outcomes alone cannot tell O_NOFOLLOW, redundant after
    O_EXCL, nor a too-wide creation mode that fchmod then narrows.)"""
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    script = ("import os, sys\n"
              "from builder.agent._batchwrite import write_files\n"
              "os.umask(int(sys.argv[2], 8))\n"
              "d = sys.argv[1].encode()\n"
              "write_files(((d + b'/plain', 0o644, (b'x',), None),\n"
              "             (d + b'/tool', 0o755, (b'y',), d + b'/object')))\n")
    def traced(umask: str) -> list[str]:
        where = tmp_path / umask
        where.mkdir()
        done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,fchmod,utimensat,link",
                               sys.executable, "-c", script, str(where), umask],
                              capture_output=True, text=True, check=False, timeout=60)
        if done.returncode and "ptrace" in done.stderr:
            pytest.skip("ptrace is not permitted here")
        assert done.returncode == 0, done.stderr
        lines = done.stderr.splitlines()
        first = next(i for i, line in enumerate(lines) if f"{where}/plain" in line)
        calls = [re.sub(r"^(fchmod|utimensat)\(\d+", r"\1(N",
                        re.sub(r"\s+= \d+$", " = N", line.replace(str(where), "D")))
                 for line in lines[first:] if not line.startswith("openat") or str(where) in line]
        return [c for c in calls if c.split("(")[0] in ("openat", "fchmod", "utimensat", "link")]

    flags = "O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC"
    plain = f'openat(AT_FDCWD, "D/plain", {flags}, 0644) = N'
    tool = f'openat(AT_FDCWD, "D/tool", {flags}, 0755) = N'
    stamp = "utimensat(N, NULL, [{tv_sec=315532800, tv_nsec=0} /* 1980-01-01T00:00:00+0000 */, " \
            "{tv_sec=315532800, tv_nsec=0} /* 1980-01-01T00:00:00+0000 */], 0) = N"
    linked = 'link("D/tool", "D/object") = N'
    assert traced("022") == [plain, tool, stamp, linked]
    assert traced("077") == [plain, "fchmod(N, 0644) = N", tool, "fchmod(N, 0755) = N", stamp,
                             linked]


@native
def test_an_object_is_stamped_then_linked(tmp_path: Path) -> None:
    assert NATIVE is not None
    (tmp_path / "objects").mkdir()
    rows = NATIVE((_row(tmp_path / "f", [b"content"], obj=tmp_path / "objects" / "o"),))
    assert rows[0][2:] == (0, 0)
    st = (tmp_path / "f").lstat()
    assert st.st_mtime_ns == STAMP * 10**9 and st.st_nlink == 2
    assert (tmp_path / "objects" / "o").lstat().st_ino == st.st_ino


@native
def test_a_refused_link_is_reported_not_raised(tmp_path: Path) -> None:
    """The file is written either way; the caller settles the link (builder.agent.objects)."""
    assert NATIVE is not None
    (tmp_path / "taken").write_bytes(b"other")
    rows = NATIVE((_row(tmp_path / "a", [b"1"], obj=tmp_path / "no-shard" / "o"),
                   _row(tmp_path / "b", [b"2"], obj=tmp_path / "taken")))
    assert [row[2:] for row in rows] == [(0, errno.ENOENT), (0, errno.EEXIST)]
    assert (tmp_path / "a").read_bytes() == b"1" and (tmp_path / "b").read_bytes() == b"2"
    assert (tmp_path / "taken").read_bytes() == b"other"


@native
@pytest.mark.parametrize("planted", ["file", "symlink", "dangling symlink", "directory"])
def test_a_name_that_is_already_anything_stops_the_batch(tmp_path: Path, planted: str) -> None:
    """O_EXCL | O_NOFOLLOW: an existing file is not rewritten, a symlink not followed (its
    target neither created nor written); the rows before are written, none after."""
    assert NATIVE is not None
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    there = tmp_path / "there"
    if planted == "file":
        there.write_bytes(b"precious")
    elif planted == "symlink":
        there.symlink_to(victim)
    elif planted == "dangling symlink":
        there.symlink_to(tmp_path / "created-through-the-link")
    else:
        there.mkdir()
    rows = NATIVE((_row(tmp_path / "before", [b"b"]), _row(there, [b"hostile"]),
                   _row(tmp_path / "after", [b"a"])))
    assert len(rows) == 2 and rows[0][2] == 0 and rows[1][2] == errno.EEXIST
    assert (tmp_path / "before").read_bytes() == b"b" and not (tmp_path / "after").exists()
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "created-through-the-link").exists()
    if planted == "file":
        assert there.read_bytes() == b"precious"


@native
def test_a_missing_directory_is_an_error_of_its_row(tmp_path: Path) -> None:
    assert NATIVE is not None
    rows = NATIVE((_row(tmp_path / "nowhere" / "f", [b"x"]),))
    assert rows == [(0, 0, errno.ENOENT, 0)]


@native
@pytest.mark.parametrize(("batch", "error"), [
    ([], TypeError),  # not a tuple
    (("not a row",), TypeError),
    (((b"p", 0o644, (b"x",)),), TypeError),  # three fields
    ((("p", 0o644, (b"x",), None),), TypeError),  # str path
    (((b"p", 0o644, [b"x"], None),), TypeError),  # pieces not a tuple
    (((b"p", 0o644, ("text",), None),), TypeError),  # a piece that is no buffer
    (((b"p", 0o644, (b"x",), "obj"),), TypeError),  # str object path
    (((b"p\0q", 0o644, (b"x",), None),), ValueError),
    (((b"p", 0o644, (b"x",), b"o\0"),), ValueError),
    (((b"p", 0o10000, (b"x",), None),), ValueError),
    (((b"p", -1, (b"x",), None),), ValueError),
])
def test_malformed_batches_are_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: Any,
        error: type[Exception]) -> None:
    assert NATIVE is not None
    monkeypatch.chdir(tmp_path)
    kept = bytearray(b"first")
    with pytest.raises(error):
        NATIVE(((b"first", 0o644, (kept,), None), *batch) if batch else batch)
    assert list(tmp_path.iterdir()) == []
    kept.extend(b" grows")  # its buffer was released: a bytearray still exported cannot resize


@native
def test_the_interpreter_lock_is_released_while_a_batch_is_written(tmp_path: Path) -> None:
    """The point of the helper: another Python thread runs while a batch is being written (with
    the lock held for the whole call, it could not take a single step inside it)."""
    assert NATIVE is not None
    data = b"x" * (256 << 10)
    batch = tuple(_row(tmp_path / f"f{i}", [data]) for i in range(400))  # 100 MiB
    steps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            steps.append(time.monotonic())

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    try:
        while not steps:
            time.sleep(0.001)
        start = time.monotonic()
        NATIVE(batch)
        end = time.monotonic()
    finally:
        stop.set()
        thread.join()
    # with the lock held the whole call, the other thread cannot take a step between the two
    inside = [t for t in steps if start + 0.02 * (end - start) < t < end - 0.02 * (end - start)]
    assert inside, f"no step of the other thread during the {end - start:.3f} s of the batch"


@native
def test_buffers_are_released_after_a_batch(tmp_path: Path) -> None:
    assert NATIVE is not None
    data = bytearray(b"data")
    NATIVE((_row(tmp_path / "f", [data]), _row(tmp_path / "g", [data, data])))
    data.extend(b" more")
    assert (tmp_path / "g").read_bytes() == b"datadata"


@native
def test_no_space_left_is_reported(tmp_path: Path) -> None:
    """ENOSPC from a write (a 64 KiB tmpfs) ends the batch with that errno."""
    assert NATIVE is not None
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=64k tmpfs {small} 2>/dev/null"):
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        rows = NATIVE((_row(small / "big", [b"x" * (1 << 20)]), _row(small / "next", [b"y"])))
        assert [row[2] for row in rows] == [errno.ENOSPC]
    finally:
        os.system(f"umount {small}")


# --- the thread around it, with a fake helper -------------------------------------------------

class Fake:
    """write_files() as the C helper answers it, recording the batches; ``fail`` maps a path to
    the errno of its row (the rows after it get no answer)."""

    def __init__(self, fail: dict[bytes, int] | None = None, link_error: int = 0) -> None:
        self.batches: list[list[bytes]] = []
        self.fail = fail or {}
        self.link_error = link_error
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a batch is under way (waiting at the gate)
        self.threads: set[tuple[str, bool]] = set()  # (name, daemon) of the callers

    def __call__(self, batch: tuple[Any, ...]) -> list[tuple[int, int, int, int]]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append([row[0] for row in batch])
        self.threads.add((threading.current_thread().name, threading.current_thread().daemon))
        out = []
        for i, (path, _mode, pieces, _obj) in enumerate(batch):
            error = self.fail.get(path, 0)
            out.append((sum(len(p) for p in pieces), 1000 + i, error, self.link_error))
            if error:
                break
        return out


def test_results_come_back_in_order_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "BATCH_FILES", 3)
    fake = Fake(link_error=errno.EEXIST)
    seen: list[tuple[Any, int, int, int]] = []
    writer = BatchWriter(fake, lambda *result: seen.append(result))
    try:
        for i in range(7):
            writer.add(f"/d/{i}", 0o644, (b"x" * i,), None, f"key{i}")
        writer.drain()
    finally:
        writer.close()
    assert fake.batches == [[b"/d/0", b"/d/1", b"/d/2"], [b"/d/3", b"/d/4", b"/d/5"], [b"/d/6"]]
    # one thread of its own, named for stack dumps, never holding up the interpreter's exit
    assert fake.threads == {("batch-writer", True)}
    assert seen == [(f"key{i}", i, 1000 + i % 3, errno.EEXIST) for i in range(7)]


def test_a_batch_is_sent_once_it_holds_enough_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "BATCH_BYTES", 10)
    fake = Fake()
    writer = BatchWriter(fake, lambda *_: None)
    try:
        writer.add("/a", 0o644, (b"123456789",), None, 1)
        writer.add("/b", 0o644, (b"",), None, 2)  # 9 bytes: kept
        writer.add("/c", 0o644, (b"1",), None, 3)  # 10: sent
        writer.add("/d", 0o644, (b"1234", b"56789"), None, 4)  # 9 again: kept
        writer.add("/e", 0o644, (b"1",), None, 5)  # 10: sent
        writer.add("/f", 0o644, (b"1",), None, 6)
        writer.drain()
    finally:
        writer.close()
    assert fake.batches == [[b"/a", b"/b", b"/c"], [b"/d", b"/e"], [b"/f"]]


def test_no_more_than_the_batches_in_flight_are_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the thread is stuck, add() blocks once IN_FLIGHT + 1 batches are out: memory held
    by queued views stays bounded."""
    monkeypatch.setattr(writer_module, "BATCH_FILES", 1)
    fake = Fake()
    fake.gate.clear()
    writer = BatchWriter(fake, lambda *_: None)
    added: list[int] = []

    def feed() -> None:
        for i in range(10):
            writer.add(f"/{i}", 0o644, (b"x",), None, i)
            added.append(i)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    deadline = time.monotonic() + 10
    while len(added) < writer_module.IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.01)
    feeder.join(0.3)
    assert len(added) == writer_module.IN_FLIGHT  # the next add waits for the oldest batch
    fake.gate.set()
    feeder.join(10)
    writer.drain()
    writer.close()
    assert len(added) == 10 and len(fake.batches) == 10


def test_the_first_failed_file_is_raised_with_its_path() -> None:
    fake = Fake(fail={b"/d/1": errno.ENOSPC})
    seen: list[Any] = []
    writer = BatchWriter(fake, lambda key, *_: seen.append(key))
    try:
        for i in range(3):
            writer.add(f"/d/{i}", 0o644, (b"x",), None, i)
        with pytest.raises(OSError, match="No space left on device") as caught:
            writer.drain()
    finally:
        writer.close()
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == "/d/1"
    assert seen == [0]


def _out_of_memory(batch: tuple[Any, ...]) -> list[tuple[int, int, int, int]]:
    raise MemoryError("no room")


@pytest.mark.parametrize(("helper", "error", "message"), [
    (Fake(fail={b"/x": errno.EEXIST}), FileExistsError, "File exists"),  # the OSError subclass
    (_out_of_memory, MemoryError, "no room"),  # an exception of the helper itself
    (lambda batch: [], RuntimeError, "answered 0 of 1 files"),  # not taken silently
], ids=["exists", "helper raises", "fewer answers"])
def test_what_went_wrong_in_the_thread_reaches_the_caller(helper: Any, error: type[Exception],
                                                          message: str) -> None:
    writer = BatchWriter(helper, lambda *_: None)
    try:
        writer.add("/x", 0o644, (b"x",), None, 0)
        with pytest.raises(error, match=message):
            writer.drain()
    finally:
        writer.close()


def test_close_stops_the_thread_and_drops_batches_not_started(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "BATCH_FILES", 1)
    fake = Fake()
    fake.gate.clear()
    writer = BatchWriter(fake, lambda *_: None)
    for i in range(writer_module.IN_FLIGHT):  # the first one under way, the others queued
        writer.add(f"/{i}", 0o644, (b"x",), None, i)
    assert fake.entered.wait(10)
    threading.Timer(0.2, fake.gate.set).start()
    writer.close()
    assert not writer._thread.is_alive()
    assert fake.batches == [[b"/0"]]  # the batch under way finished; the others never began


# --- the extraction with it -----------------------------------------------------------------

def _install(store: Store, archive: Path) -> Path:
    source = resolve_source(str(archive), index=None, sha256=None, target=X86, transport=T)
    return install(source, store, transport=T, options=InstallOptions()).path


def _links_refused(monkeypatch: pytest.MonkeyPatch, link_error: int) -> None:
    """The C helper on a file system that refuses every object link with ``link_error``: the
    files are written, no link is made, each row says ``link_error``."""
    real = NATIVE
    assert real is not None

    def refusing(batch: tuple[Any, ...]) -> Sequence[tuple[int, int, int, int]]:
        rows = real(tuple((path, mode, pieces, None) for path, mode, pieces, _ in batch))
        return [(b, i, e, link_error if obj is not None else 0)
                for (b, i, e, _), (_, _, _, obj) in zip(rows, batch, strict=False)]

    monkeypatch.setattr(extract_module, "NATIVE", refusing)


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before]


@native
def test_a_link_the_file_system_refuses_leaves_the_entry_its_own_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper reports EMLINK (an inode's link limit) for every object: the install
    succeeds, each file is the entry's own (one link), no object is made."""
    _links_refused(monkeypatch, errno.EMLINK)
    store = Store(root=tmp_path / "store")
    entry = _install(store, make_bundle(tmp_path / "dist", extra_files=10).archive)
    record = entry / RECORD_FILE  # written by this thread (read back at once): an object
    files = [p for p in (entry / "app").rglob("*")
             if p.is_file() and not p.is_symlink() and p != record]
    assert len(files) == 12 and all(p.lstat().st_nlink == 1 for p in files)
    objects = [p for p in store.objects_dir.rglob("*") if p.is_file()]
    assert [p.lstat().st_ino for p in objects] == [record.lstat().st_ino]


@native
def test_any_other_link_error_fails_the_install(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _links_refused(monkeypatch, errno.EIO)
    store = Store(root=tmp_path / "store")
    before = set(threading.enumerate())
    with pytest.raises(BuilderError, match="cannot install: Input/output error"):
        _install(store, make_bundle(tmp_path / "dist", extra_files=10).archive)
    assert not list(store.entries_dir.iterdir()) if store.entries_dir.exists() else True
    assert _new_threads(before) == []


@native
def test_a_failed_write_fails_the_install_cleanly(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC in a batch: a clear error naming the file, no entry, no thread left."""
    assert NATIVE is not None
    real = NATIVE

    def full(batch: tuple[Any, ...]) -> Sequence[tuple[int, int, int, int]]:
        rows = list(real(batch))
        bytes_, inode, _, link = rows[-1]
        rows[-1] = (bytes_, inode, errno.ENOSPC, link)
        return rows

    monkeypatch.setattr(extract_module, "NATIVE", full)
    store = Store(root=tmp_path / "store")
    before = set(threading.enumerate())
    with pytest.raises(BuilderError, match="cannot install: No space left on device") as caught:
        _install(store, make_bundle(tmp_path / "dist", extra_files=10).archive)
    assert caught.value.where.startswith(str(tmp_path / "store"))
    assert not (store.entries_dir.exists() and list(store.entries_dir.iterdir()))
    assert _new_threads(before) == []


@native
def test_a_refusal_midway_stops_the_writer_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile member after files the writer already holds: refused, no entry, the thread
    gone, nothing written outside."""
    monkeypatch.setattr(writer_module, "BATCH_FILES", 3)
    files = [M(f"app/lib/f{i}", b"x%d" % i) for i in range(20)]
    manifest = manifest_dict(files=22 + 1, unpacked_bytes=10_000)
    archive, sha = raw_bundle(tmp_path / "bad.tar.zst", [
        manifest_member(manifest), *base_members(), *files,
        M("app/lib/../../../escape", b"bad")])
    store = Store(root=tmp_path / "store")
    source = resolve_source(str(archive), index=None, sha256=sha, target=X86, transport=T)
    before = set(threading.enumerate())
    with pytest.raises(BuilderError, match="escape"):
        install(source, store, transport=T, options=InstallOptions())
    assert _new_threads(before) == []
    assert not (tmp_path / "escape").exists()
    assert not (store.entries_dir.exists() and list(store.entries_dir.iterdir()))


@native
def test_an_object_still_being_written_is_linked_once_it_is_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files with the same bytes one after the other (make_bundle's extra files, empty here):
    the second is linked to the object of the first although that one is still queued (nothing
    is sent before the end here): the writer is drained first; all three share one inode."""
    monkeypatch.setattr(writer_module, "BATCH_FILES", 1000)
    store = Store(root=tmp_path / "store")
    entry = _install(store, make_bundle(tmp_path / "dist", extra_files=3, file_size=0).archive)
    files = [entry / f"app/lib/d000/f0000{i}.txt" for i in range(3)]
    assert [p.read_bytes() for p in files] == [b""] * 3
    assert len({p.lstat().st_ino for p in files}) == 1


@pytest.mark.parametrize("writer_kind", ["python"], indirect=True)
def test_a_full_disk_is_not_called_a_corrupt_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_kind: str) -> None:
    """The Python writer's ENOSPC (here from open: no inode left) is the disk's, not the
    archive's: "cannot install" at that file, no entry (it said "truncated or corrupt archive
    ... malformed or malicious" before the batch writer came)."""
    real_open = os.open

    def full(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if "/entry/app/lib/" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", full)
    store = Store(root=tmp_path / "store")
    with pytest.raises(BuilderError, match="cannot install: No space left on device") as caught:
        _install(store, make_bundle(tmp_path / "dist", extra_files=3).archive)
    assert "/entry/app/lib/" in caught.value.where and not caught.value.hint
    assert not (store.entries_dir.exists() and list(store.entries_dir.iterdir()))
