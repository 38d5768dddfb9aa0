"""The store's content-addressed objects: files shared by entries are on the disk once (hard
links), an install writes only what is new, a damaged object is never linked again, a RECORD
that lies is refused, and gc removes the objects nobody links."""

from __future__ import annotations

import errno
import hashlib
import os
import tarfile
from pathlib import Path

import pytest
import zstandard
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
    sidecar_for,
)

from builder.agent import InstallOptions, NetAgentTransport, Store, collect_garbage, install
from builder.agent import extract as extract_module
from builder.agent.errors import RefusedBundleError
from builder.agent.extract import Limits, extract_bundle
from builder.agent.manifest_check import Expectation, check_manifest
from builder.agent.objects import STAMP, ObjectStore, orphans
from builder.agent.source import resolve_source
from builder.agent.store import EntryRecord
from builder.agent.verify import entry_differences
from builder.bundle.record import RECORD_FILE, Item, parse, render

# every extraction here twice: the C batch writer and the Python writer (conftest.py)
pytestmark = pytest.mark.usefixtures("writer_kind")


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


def blocks_by_inode(entry: Path) -> dict[tuple[int, int], int]:
    """Bytes on disk of each inode of the entry's bundle tree (the entry directory, its
    manifest.json, service-def.json and app/; not the store's own bookkeeping beside them)."""
    paths = [entry, *(p for p in entry.iterdir()
                      if p.name in ("app", "manifest.json", "service-def.json"))]
    paths += list((entry / "app").rglob("*"))
    return {(st.st_dev, st.st_ino): st.st_blocks * 512 for st in (p.lstat() for p in paths)}


def test_an_entry_counts_its_blocks_each_inode_once(store: Store, tmp_path: Path) -> None:
    """disk_bytes: every inode of the entry once (a file linked twice counts once); new_bytes:
    those this install wrote (what it linked from the store's objects is not new)."""
    one = put(store, make_bundle(tmp_path / "dist", name="one", extra_files=40,
                                 file_size=20_000).archive)
    two = put(store, make_bundle(tmp_path / "dist", name="two", extra_files=60,
                                 file_size=20_000).archive)
    a = blocks_by_inode(store.entry_path(one.sha256))
    b = blocks_by_inode(store.entry_path(two.sha256))
    assert one.disk_bytes == one.new_bytes == sum(a.values())
    assert two.disk_bytes == sum(b.values())
    assert two.new_bytes == sum(size for inode, size in b.items() if inode not in a)
    assert two.new_bytes < two.disk_bytes - 26 * 20_000


def test_the_files_of_app_become_objects_and_nothing_else(store: Store, tmp_path: Path) -> None:
    """manifest.json and service-def.json stay the entry's own files."""
    record = put(store, make_bundle(tmp_path / "dist", extra_files=3).archive)
    entry = store.entry_path(record.sha256)
    app_files = [p for p in (entry / "app").rglob("*") if p.is_file() and not p.is_symlink()]
    assert sorted(p.relative_to(store.objects_dir).as_posix()
                  for p in store.objects_dir.rglob("*") if p.is_file()) == sorted(
        {f"{sha(p.read_bytes())[:2]}/{sha(p.read_bytes())}.{p.stat().st_mode & 0o777:o}"
         for p in app_files})
    for own in ("manifest.json", "service-def.json"):
        assert (entry / own).stat().st_nlink == 1


def test_service_def_is_never_linked_to_an_object(store: Store, tmp_path: Path) -> None:
    """Even when it comes after the RECORD (which lists it) and an app file with its very bytes
    became an object just before: service-def.json is written, the entry's own file."""
    service_def = b'{"name": "demo"}\n'
    record = render({"app": Item("d", 0o755), "app/bin": Item("d", 0o755),
                     "app/bin/run": Item("f", 0o755, len(RUN_SCRIPT), sha(RUN_SCRIPT)),
                     "app/bin/run-link": Item("l", digest="run"), "app/lib": Item("d", 0o755),
                     "app/lib/data.txt": Item("f", 0o644, len(DATA), sha(DATA)),
                     "app/lib/copy.json": Item("f", 0o644, len(service_def), sha(service_def)),
                     "service-def.json": Item("f", 0o644, len(service_def), sha(service_def))})
    manifest = manifest_dict(files=4, unpacked_bytes=len(RUN_SCRIPT) + len(DATA)
                             + len(service_def) + len(record),
                             record={"file": RECORD_FILE, "entries": 8, "sha256": sha(record)})
    archive, _ = raw_bundle(tmp_path / "late-1.0.tar.zst", [
        manifest_member(manifest), M(RECORD_FILE, record), *base_members(),
        M("app/lib/copy.json", service_def), M("service-def.json", service_def)])
    sidecar_for(archive, manifest)
    entry = store.entry_path(put(store, archive).sha256)
    assert (entry / "app/lib/copy.json").stat().st_nlink == 2  # itself and its object
    assert (entry / "service-def.json").read_bytes() == service_def
    assert (entry / "service-def.json").stat().st_nlink == 1


def _record_size(archive: Path) -> int:
    with archive.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as raw, \
            tarfile.open(fileobj=raw, mode="r|") as tar:
        return next(m.size for m in tar if m.name == RECORD_FILE)


@pytest.mark.parametrize("room", [0, -1], ids=["at-the-limit", "above-it"])
def test_a_record_of_the_largest_size_still_links_objects(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    """The RECORD size limit (256 MiB; lowered here to the RECORD's own size) is inclusive: a
    RECORD of exactly that size is read early and its files linked; one byte more is refused."""
    one = put(store, make_bundle(tmp_path / "dist", name="one").archive)
    two = make_bundle(tmp_path / "dist", name="two").archive
    monkeypatch.setattr(extract_module, "MAX_RECORD_BYTES", _record_size(two) + room)
    if room < 0:
        with pytest.raises(RefusedBundleError, match=r"is not the one manifest\.json names"):
            put(store, two)
        return
    entry = store.entry_path(put(store, two).sha256)
    shared = store.entry_path(one.sha256) / "app/lib/data.txt"
    assert (entry / "app/lib/data.txt").stat().st_ino == shared.stat().st_ino


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


OTHER_BYTES = Item("f", 0o644, len(DATA), sha(b"Y" * len(DATA)))


def _lying_bundle(tmp_path: Path, data_item: Item | None = OTHER_BYTES) -> tuple[Path, str]:
    """A bundle whose RECORD (before the files) says app/lib/data.txt is ``data_item`` (by
    default: other bytes of the same size; None: not listed)."""
    items = {"app": Item("d", 0o755), "app/bin": Item("d", 0o755),
             "app/bin/run": Item("f", 0o755, len(RUN_SCRIPT), sha(RUN_SCRIPT)),
             "app/bin/run-link": Item("l", digest="run"), "app/lib": Item("d", 0o755)}
    if data_item is not None:
        items["app/lib/data.txt"] = data_item
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


@pytest.mark.parametrize(("data_item", "difference"), [
    (None, "app/lib/data.txt: a file the RECORD does not list"),
    (Item("d", 0o755), "app/lib/data.txt: is a file, the RECORD says a directory"),
    (Item("l", digest="x"), "app/lib/data.txt: is a file, the RECORD says a symlink"),
    (Item("f", 0o755, len(DATA), sha(DATA)), "app/lib/data.txt: mode 0644, the RECORD says 0755"),
], ids=["unlisted", "directory", "symlink", "mode"])
def test_a_file_the_record_misdescribes_is_written_then_refused(
        tmp_path: Path, data_item: Item | None, difference: str) -> None:
    """The store holds the file's object (its bytes and mode): nothing is linked for a RECORD
    line that does not describe the member; the whole RECORD check names the difference."""
    archive, digest = _lying_bundle(tmp_path, data_item)
    objects = ObjectStore(tmp_path / "objects")
    _adopt(objects, tmp_path / "planted", DATA, 0o644)
    with archive.open("rb") as raw, pytest.raises(RefusedBundleError) as info:
        extract_bundle(raw, tmp_path / "work", sha256=digest, size=None, on_manifest=lambda b:
                       check_manifest(b, Expectation(sha256="0" * 64, vouched_by="t"), where="t"),
                       limits=Limits(), where="W", objects=objects)
    assert info.value.what == ("the bundle's RECORD does not describe its contents "
                               f"(1 difference(s)):\n  {difference}")


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


def _adopt(objects: ObjectStore, path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)
    fd = os.open(path, os.O_RDONLY)
    try:
        objects.adopt(fd, str(path), sha(data), mode)
    finally:
        os.close(fd)


def test_objects_live_where_every_agent_version_finds_them(store: Store, tmp_path: Path) -> None:
    """The store's layout (``objects/<sha256[:2]>/<sha256>.<mode>``) is what gc, repairs and
    the next agent version read: each object's name is the sha256 of its bytes."""
    record = put(store, make_bundle(tmp_path / "dist", extra_files=5).archive)
    objects = [p for p in store.objects_dir.rglob("*") if p.is_file()]
    assert objects
    for path in objects:
        digest, mode = path.name.split(".")
        assert path.parent.name == digest[:2] and path.parent.parent == store.objects_dir
        assert sha(path.read_bytes()) == digest and int(mode, 8) == path.stat().st_mode & 0o777
    assert entry_differences(record, store.entry_path(record.sha256)) == []


def test_shards_are_not_writable_by_others_whatever_the_umask(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    objects.root.mkdir(mode=0o755)
    old = os.umask(0)
    try:
        _adopt(objects, tmp_path / "f", b"bytes", 0o644)
    finally:
        os.umask(old)
    shard = Path(objects.path(sha(b"bytes"), 0o644)).parent
    assert shard.stat().st_mode & 0o022 == 0  # nobody else can plant an object there


def test_two_installs_adopting_the_same_content_at_once_both_succeed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other install makes the shard and links the object between our first link and our
    mkdir: neither is an error, and the object is the other's."""
    objects = ObjectStore(tmp_path / "objects")
    objects.root.mkdir()
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"shared")
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        if dst == objects.path(sha(b"shared"), 0o644) and not Path(dst).parent.exists():
            Path(dst).parent.mkdir()
            real_link(theirs, dst)
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), dst)  # as the OS
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    _adopt(objects, tmp_path / "ours", b"shared", 0o644)
    assert Path(objects.path(sha(b"shared"), 0o644)).stat().st_ino == theirs.stat().st_ino


@pytest.mark.parametrize("writer_kind", ["python"], indirect=True)  # os.link faked: Python's
def test_a_file_system_that_refuses_more_links_gets_copies(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EMLINK (an inode's link limit): the entry keeps its own copy, the install succeeds; any
    other error of a link is not hidden. (The batch writer's: test_agent_writer.py.)"""
    import errno

    archive = make_bundle(tmp_path / "dist", name="one").archive
    put(store, archive)

    def full(src: str, dst: str) -> None:
        raise OSError(errno.EMLINK, "Too many links", dst)

    monkeypatch.setattr(os, "link", full)
    two = put(store, make_bundle(tmp_path / "dist", name="two").archive)
    b = store.entry_path(two.sha256)
    assert entry_differences(two, b) == []
    assert all(st.st_nlink == 1 for st in files_of(b).values())

    objects = ObjectStore(store.objects_dir)
    digest = sha(RUN_SCRIPT)

    def broken(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error", dst)

    monkeypatch.setattr(os, "link", broken)
    with pytest.raises(OSError, match="Input/output error"):
        objects.link_into(digest, 0o755, len(RUN_SCRIPT), str(tmp_path / "x"))
    with pytest.raises(OSError, match="Input/output error") as caught:
        _adopt(objects, tmp_path / "new", b"new bytes", 0o644)
    assert caught.value.errno == errno.EIO


def test_gc_never_follows_symlinks_planted_among_the_objects(store: Store,
                                                             tmp_path: Path) -> None:
    """A symlink in objects/ (to a directory elsewhere) or in a shard (dangling, or to a file
    with other links) is removed itself; what it points to is never touched."""
    put(store, make_bundle(tmp_path / "dist").archive)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    (store.objects_dir / "zz").symlink_to(outside)
    shard = next(p for p in store.objects_dir.iterdir() if p.is_dir() and not p.is_symlink())
    held = tmp_path / "held"
    held.write_bytes(b"two links")
    os.link(held, tmp_path / "held2")
    (shard / ("0" * 64 + ".644")).symlink_to(held)
    (shard / ("1" * 64 + ".644")).symlink_to(tmp_path / "gone")
    found = orphans(store.objects_dir)
    assert sorted(found) == sorted([shard / ("0" * 64 + ".644"), shard / ("1" * 64 + ".644")])
    collect_garbage(store, 10**12)  # nothing evicted: only the orphans go
    assert (outside / "victim").read_bytes() == b"precious" and held.read_bytes() == b"two links"


def test_gc_finds_orphans_in_every_shard_past_stray_files(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    objects.root.mkdir()
    for i in range(40):
        (objects.root / f"stray{i}").write_bytes(b"not a shard")
        _adopt(objects, tmp_path / f"f{i}", b"content %d" % i, 0o644)
        (tmp_path / f"f{i}").unlink()  # the entry went: the object is an orphan
    assert len(orphans(objects.root)) == 40


def test_an_interrupted_replacement_leaves_a_spare_gc_removes(store: Store,
                                                              tmp_path: Path) -> None:
    """``<object>.<random>.new`` is a spare hard link of an entry's file (the install stopped
    before renaming it): gc removes it although it has two links, and keeps the entry's file."""
    record = put(store, make_bundle(tmp_path / "dist").archive)
    run = store.entry_path(record.sha256) / "app/bin/run"
    spare = Path(ObjectStore(store.objects_dir).path(sha(RUN_SCRIPT), 0o755) + ".0a1b2c3d.new")
    os.link(run, spare)
    assert orphans(store.objects_dir) == [spare]
    collect_garbage(store, 10**12)
    assert not spare.exists() and run.read_bytes() == RUN_SCRIPT
    assert entry_differences(record, store.entry_path(record.sha256)) == []


def test_gc_taking_the_spare_of_a_replacement_does_not_fail_the_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged object is replaced through a ``.new`` spare; gc may remove that spare before
    the rename (it is a leftover to gc): the install goes on, the entry keeps its own copy."""
    objects = ObjectStore(tmp_path / "objects")
    objects.root.mkdir()
    _adopt(objects, tmp_path / "first", b"content", 0o644)
    os.utime(objects.path(sha(b"content"), 0o644))  # damaged: written since
    real_link = os.link

    def link_then_gc(src: str, dst: str) -> None:
        real_link(src, dst)
        if dst.endswith(".new"):
            for path in orphans(objects.root):
                path.unlink()

    monkeypatch.setattr(os, "link", link_then_gc)
    _adopt(objects, tmp_path / "second", b"content", 0o644)
    assert (tmp_path / "second").read_bytes() == b"content"
    assert not list(objects.root.rglob("*.new"))


def test_each_shard_is_listed_once_and_a_listed_name_is_still_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install asks for ~20 k objects: one listdir per shard, no lstat for a name the shard
    does not hold; a name it holds is lstat'ed (and refused when it is gone or touched)."""
    objects = ObjectStore(tmp_path / "objects")
    objects.root.mkdir()
    _adopt(ObjectStore(objects.root), tmp_path / "a", b"held", 0o644)
    listed: list[str] = []
    statted: list[str] = []
    real_listdir, real_lstat = os.listdir, os.lstat

    def listdir(path: str) -> list[str]:
        listed.append(path)
        return real_listdir(path)

    def lstat(path: str) -> os.stat_result:
        statted.append(path)
        return real_lstat(path)

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "lstat", lstat)
    held = sha(b"held")
    absent = held[:2] + "0" * 62  # same shard, not held
    assert objects.usable(absent, 0o644, 4) is None
    assert objects.usable(held, 0o755, 4) is None  # the mode is part of the name
    assert statted == []
    assert objects.usable(held, 0o644, 4) is not None
    assert statted == [objects.path(held, 0o644)]
    assert objects.usable("ff" + "0" * 62, 0o644, 4) is None  # a shard that does not exist
    assert objects.usable("ff" + "1" * 62, 0o644, 4) is None
    assert listed == [f"{objects.root}/{held[:2]}", f"{objects.root}/ff"]
    Path(objects.path(held, 0o644)).unlink()  # listed, then removed (by gc): not linked
    assert objects.usable(held, 0o644, 4) is None
    assert objects.link_into(held, 0o644, 4, str(tmp_path / "x")) is None


def test_objects_adopted_are_known_without_listing_again_and_others_only_cost_a_copy(
        tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    objects.root.mkdir()
    assert objects.usable(sha(b"mine"), 0o644, 4) is None  # shard listed (absent)
    _adopt(objects, tmp_path / "a", b"mine", 0o644)
    st = objects.link_into(sha(b"mine"), 0o644, 4, str(tmp_path / "b"))
    assert st is not None and (tmp_path / "b").stat().st_ino == (tmp_path / "a").stat().st_ino
    # another agent's object, added after this store object listed the shard: not seen here
    # (this install writes its own copy), seen by the next install
    assert objects.usable(sha(b"theirs"), 0o644, 6) is None
    _adopt(ObjectStore(objects.root), tmp_path / "c", b"theirs", 0o644)
    assert objects.usable(sha(b"theirs"), 0o644, 6) is None
    assert ObjectStore(objects.root).usable(sha(b"theirs"), 0o644, 6) is not None


def test_an_object_already_there_stays_the_object(store: Store, tmp_path: Path) -> None:
    """Bundles without a RECORD cannot be linked from the store: their files are written, and
    the link to an object that exists fails (EEXIST). A usable object stays: the first entry's
    inode remains the object (its sharing kept), the second entry keeps its own copy."""
    first = put(store, make_bundle(tmp_path / "dist", name="one", record=False).archive)
    second = put(store, make_bundle(tmp_path / "dist", name="two", record=False).archive)
    objects = ObjectStore(store.objects_dir)
    run_object = Path(objects.path(sha(RUN_SCRIPT), 0o755)).lstat()
    assert run_object.st_ino == (store.entry_path(first.sha256) / "app/bin/run").lstat().st_ino
    ours = (store.entry_path(second.sha256) / "app/bin/run").lstat()
    assert ours.st_ino != run_object.st_ino and ours.st_nlink == 1
