"""The store's content-addressed objects: files shared by entries are on the disk once (hard
links), an install writes only what is new, a damaged object is never linked again, a RECORD
that lies is refused, and gc removes the objects nobody links."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from agent_factories import (
    DATA,
    RUN_SCRIPT,
    X86,
    M,
    base_members,
    dir_,
    make_bundle,
    manifest_dict,
    manifest_member,
    raw_bundle,
)

from builder.agent import InstallOptions, NetAgentTransport, Store, collect_garbage, install
from builder.agent.errors import RefusedBundleError
from builder.agent.extract import Limits, extract_bundle
from builder.agent.manifest_check import Expectation, check_manifest
from builder.agent.objects import STAMP, ObjectStore, orphans
from builder.agent.source import resolve_source
from builder.agent.store import EntryRecord
from builder.agent.verify import entry_differences
from builder.bundle.record import RECORD_FILE, Item, parse, render

T = NetAgentTransport()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(store: Store, archive: Path) -> EntryRecord:
    source = resolve_source(str(archive), index=None, sha256=None, target=X86, transport=T)
    return install(source, store, transport=T, options=InstallOptions()).record


def du(*roots: Path) -> int:
    """Bytes on disk below the roots, each inode once (``du`` semantics)."""
    seen: dict[tuple[int, int], int] = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


def files_of(entry: Path) -> dict[str, os.stat_result]:
    return {p.relative_to(entry).as_posix(): p.lstat() for p in (entry / "app").rglob("*")
            if p.is_file() and not p.is_symlink()}


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(root=tmp_path / "store", clock=Clock())


def test_a_second_app_links_what_the_store_holds_and_writes_only_what_is_new(
        store: Store, tmp_path: Path) -> None:
    one = put(store, make_bundle(tmp_path / "dist", name="one", extra_files=40,
                                 file_size=20_000).archive)
    two = put(store, make_bundle(tmp_path / "dist", name="two", extra_files=60,
                                 file_size=20_000).archive)
    a, b = store.entry_path(one.sha256), store.entry_path(two.sha256)
    files_a, files_b = files_of(a), files_of(b)
    for shared in ("app/bin/run", "app/lib/data.txt", "app/lib/d000/f00003.txt"):
        assert files_a[shared].st_ino == files_b[shared].st_ino
        assert files_b[shared].st_nlink >= 3  # the object and the two entries
    # extra files repeat 26 contents: one copy of each on the disk, whatever the entries
    contents = {(sha(p.read_bytes()), p.stat().st_mode) for e in (a, b)
                for p in (e / "app").rglob("f*.txt")}
    assert len(contents) == 26
    extra = {st.st_ino for e in (files_a, files_b) for p, st in e.items() if "/d000/" in p}
    assert len(extra) == 26
    # two wrote its RECORD, its manifest and its directories, none of the shared files
    assert two.new_bytes is not None and two.new_bytes < two.disk_bytes - 26 * 20_000
    together = du(store.entries_dir, store.objects_dir)
    assert together < 0.7 * (one.disk_bytes + two.disk_bytes)
    assert entry_differences(one, a) == [] and entry_differences(two, b) == []


def test_an_install_again_of_the_same_bundle_keeps_the_objects(store: Store,
                                                               tmp_path: Path) -> None:
    archive = make_bundle(tmp_path / "dist", extra_files=30).archive
    record = put(store, archive)
    objects = sorted(p for p in store.objects_dir.rglob("*") if p.is_file())
    (store.entry_path(record.sha256) / "app/bin/run").unlink()  # damage: a file removed
    put(store, archive)  # repaired from the object, not written again
    assert sorted(p for p in store.objects_dir.rglob("*") if p.is_file()) == objects
    assert entry_differences(record, store.entry_path(record.sha256)) == []


def test_a_damaged_object_is_not_linked_again_and_its_entry_is_repaired(
        store: Store, tmp_path: Path) -> None:
    one = put(store, make_bundle(tmp_path / "dist", name="one").archive)
    a = store.entry_path(one.sha256)
    with (a / "app/bin/run").open("r+b") as fh:  # a write through the hard link
        fh.write(b"#!/bin/sh\nrm -rf /\n")
    (a / "app/lib/data.txt").chmod(0o600)  # and a chmod
    two = put(store, make_bundle(tmp_path / "dist", name="two").archive)
    b = store.entry_path(two.sha256)
    assert (b / "app/bin/run").read_bytes() == RUN_SCRIPT
    assert (b / "app/lib/data.txt").stat().st_mode & 0o777 == 0o644
    assert files_of(a)["app/bin/run"].st_ino != files_of(b)["app/bin/run"].st_ino
    assert entry_differences(two, b) == []
    damage = {d.kind for d in entry_differences(one, a)}
    assert damage == {"content", "mode"}
    put(store, make_bundle(tmp_path / "dist", name="one").archive)  # repair
    assert entry_differences(one, a) == []
    assert files_of(a)["app/bin/run"].st_ino == files_of(b)["app/bin/run"].st_ino


def test_gc_removes_the_objects_nobody_links_and_keeps_the_others(store: Store,
                                                                   tmp_path: Path) -> None:
    put(store, make_bundle(tmp_path / "dist", name="one", extra_files=3).archive)
    store.clock.now = 2_000.0  # type: ignore[attr-defined]  # two is used later
    two = put(store, make_bundle(tmp_path / "dist", name="two", extra_files=30,
                                 file_size=999).archive)
    assert orphans(store.objects_dir) == []
    report = collect_garbage(store, du(store.entry_path(two.sha256)))
    assert [s.record.name for s in report.evicted] == ["one"]
    assert report.objects_removed > 0
    left = {p.name.split(".")[0] for p in store.objects_dir.rglob("*") if p.is_file()}
    recorded = parse((store.entry_path(two.sha256) / RECORD_FILE).read_bytes(), where="t")
    assert left == {i.digest for p, i in recorded.items() if i.kind == "f" and p.startswith(
        "app/")} | {sha(
        (store.entry_path(two.sha256) / RECORD_FILE).read_bytes())}
    assert entry_differences(two, store.entry_path(two.sha256)) == []
    collect_garbage(store, 0)
    assert [p for p in store.objects_dir.rglob("*") if p.is_file()] == []


def test_the_mode_is_part_of_the_key_and_an_object_must_look_untouched(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    for name, mode in (("x", 0o755), ("r", 0o644)):
        path = tmp_path / name
        path.write_bytes(b"same bytes")
        path.chmod(mode)
        fd = os.open(path, os.O_RDONLY)
        try:
            objects.adopt(fd, str(path), sha(b"same bytes"), mode)
        finally:
            os.close(fd)
    x = objects.usable(sha(b"same bytes"), 0o755, 10)
    r = objects.usable(sha(b"same bytes"), 0o644, 10)
    assert x is not None and r is not None and x.st_ino != r.st_ino
    assert x.st_mtime_ns == STAMP * 10**9
    assert objects.usable(sha(b"same bytes"), 0o644, 11) is None  # not the RECORD's size
    os.utime(objects.path(sha(b"same bytes"), 0o644))  # written (any write sets the mtime)
    assert objects.usable(sha(b"same bytes"), 0o644, 10) is None
    os.chmod(objects.path(sha(b"same bytes"), 0o755), 0o700)
    assert objects.usable(sha(b"same bytes"), 0o755, 10) is None


def _lying_bundle(tmp_path: Path) -> tuple[Path, str]:
    """A bundle whose RECORD says app/lib/data.txt holds other bytes (of the same size)."""
    other = b"Y" * len(DATA)
    items = {"app": Item("d", 0o755), "app/bin": Item("d", 0o755),
             "app/bin/run": Item("f", 0o755, len(RUN_SCRIPT), sha(RUN_SCRIPT)),
             "app/bin/run-link": Item("l", digest="run"), "app/lib": Item("d", 0o755),
             "app/lib/data.txt": Item("f", 0o644, len(DATA), sha(other))}
    record = render(items)
    manifest = manifest_dict(files=3, unpacked_bytes=len(RUN_SCRIPT) + len(DATA) + len(record),
                             record={"file": RECORD_FILE, "sha256": sha(record),
                                     "entries": len(items)})
    members = [manifest_member(manifest), dir_("app"), M(RECORD_FILE, record),
               *base_members()[1:]]
    return raw_bundle(tmp_path / "lie.tar.zst", members)


@pytest.mark.parametrize("object_held", [True, False])
def test_a_record_that_lies_is_refused_whether_or_not_an_object_would_be_linked(
        tmp_path: Path, object_held: bool) -> None:
    archive, digest = _lying_bundle(tmp_path)
    objects = ObjectStore(tmp_path / "objects")
    if object_held:  # the store holds the object the RECORD names
        planted = tmp_path / "planted"
        planted.write_bytes(b"Y" * len(DATA))
        planted.chmod(0o644)
        fd = os.open(planted, os.O_RDONLY)
        objects.adopt(fd, str(planted), sha(b"Y" * len(DATA)), 0o644)
        os.close(fd)
    with archive.open("rb") as raw, pytest.raises(RefusedBundleError) as info:
        extract_bundle(raw, tmp_path / "work", sha256=digest, size=None, on_manifest=lambda b:
                       check_manifest(b, Expectation(sha256="0" * 64, vouched_by="t"), where="t"),
                       limits=Limits(), where="W", objects=objects)
    expected = ("app/lib/data.txt: content differs from the RECORD" if object_held
                else "the bundle's RECORD does not describe its contents")
    assert expected in info.value.what


def test_an_archive_that_is_not_the_one_vouched_for_is_reported_as_that_first(
        tmp_path: Path) -> None:
    """A refused member does not hide a wrong sha256: the rest of the file is hashed."""
    archive, _ = raw_bundle(tmp_path / "b.tar.zst",
                            [manifest_member(manifest_dict()), M("/etc/evil", b"x")])
    with archive.open("rb") as raw, pytest.raises(RefusedBundleError) as info:
        extract_bundle(raw, tmp_path / "work", sha256="0" * 64, size=None, on_manifest=lambda b:
                       check_manifest(b, Expectation(sha256="0" * 64, vouched_by="t"), where="t"),
                       limits=Limits(), where="W")
    assert info.value.what.startswith("the archive changed while it was read")
