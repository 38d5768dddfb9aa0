"""Mounted entries, the parts that need no mount: what the sidecar lists, the superblock check
that runs before any mount, which mount a node can do, the store's hooks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from agent_factories import X86, Fabricated, canonical, make_bundle
from image_factories import add_image, list_image
from servers import serve_directory

from builder.agent import (
    InstallOptions,
    InstallResult,
    NetAgentTransport,
    Store,
    install,
    mount,
)
from builder.agent import image as image_module
from builder.agent.errors import RefusedBundleError
from builder.agent.image import MAX_MANIFEST_BYTES, SQUASHFS_MAGIC, check_superblock
from builder.agent.install import mount_method
from builder.agent.mount import (
    MountMethod,
    Node,
    choose_method,
    fuse_allows_other,
    mount_image,
    mount_source,
)
from builder.agent.source import FsImage, resolve_source
from builder.agent.store import EntryRecord
from builder.bundle.record import RECORD_FILE, Difference
from builder.errors import BuilderError, HashMismatchError, UsageError
from builder.fsutil import CHUNK

T = NetAgentTransport()
KERNEL_AND_FUSE = Node(root=True, filesystems=frozenset({"squashfs", "fuse"}),
                       loop_device=True, fuse_device=True, squashfuse="/usr/bin/squashfuse",
                       allow_other=True)


def superblock(**fields: int) -> bytes:
    values = {"magic": SQUASHFS_MAGIC, "inodes": 5, "mkfs_time": 0, "block_size": 131072,
              "fragments": 1, "compression": 5, "block_log": 17, "flags": 0, "ids": 1,
              "major": 4, "minor": 0, "root": 0, "bytes_used": 4096}
    tables = [fields.pop("table", 100)] * 6
    values.update(fields)
    return struct.pack("<IIIIIHHHHHHQQ", *values.values()) + struct.pack("<6Q", *tables)


def test_a_sound_superblock_passes() -> None:
    check_superblock(superblock(), file_size=4096, where="x")


@pytest.mark.parametrize(("head", "size", "message"), [
    (b"", 0, "not a squashfs image: 0 bytes, shorter than a superblock"),
    (b"\x7fELF" + bytes(92), 96, "not a squashfs image (no squashfs magic)"),
    (superblock(bytes_used=8192), 4096, "says it uses 8192 bytes, the file has 4096 "
     "(truncated?)"),
    (superblock(major=3), 4096, "squashfs version 3.0, not 4.0"),
    (superblock(block_size=1000), 4096, "block size 1000 (log 17)"),
    (superblock(block_log=16), 4096, "block size 131072 (log 16)"),
    (superblock(compression=9), 4096, "unknown compressor 9"),
    (superblock(inodes=0), 4096, "no inodes"),
    (superblock(table=5000), 4096, "a table lies outside the image"),
])
def test_unsound_superblocks_are_refused(head: bytes, size: int, message: str) -> None:
    with pytest.raises(RefusedBundleError) as caught:
        check_superblock(head, file_size=size, where="img")
    sound = message.startswith("not a squashfs image")
    assert caught.value.what == (message if sound else f"not a sound squashfs image: {message}")
    assert caught.value.where == "img"
    assert caught.value.hint == "the image is malformed or malicious; nothing was mounted"


def test_every_problem_of_a_superblock_is_named_at_once() -> None:
    with pytest.raises(RefusedBundleError) as caught:
        check_superblock(superblock(inodes=0, compression=0), file_size=4096, where="img")
    assert caught.value.what == ("not a sound squashfs image: unknown compressor 0; "
                                 "no inodes")


@pytest.mark.parametrize(("fields", "sound"), [
    ({"block_size": 4096, "block_log": 12}, True),
    ({"block_size": 2048, "block_log": 11}, False),
    ({"block_size": 1 << 20, "block_log": 20}, True),
    ({"block_size": 1 << 21, "block_log": 21}, False),
    ({"table": 4095}, True),
    ({"table": 4096}, False),  # a table starting at bytes_used lies outside
    ({"table": 0xFFFFFFFFFFFFFFFF}, True),  # an absent table
])
def test_superblock_bounds(fields: dict[str, int], sound: bool) -> None:
    head = superblock(**fields)
    if sound:
        check_superblock(head, file_size=4096, where="img")
    else:
        with pytest.raises(RefusedBundleError, match=r"^img: not a sound squashfs image"):
            check_superblock(head, file_size=4096, where="img")


def test_a_real_image_passes_and_its_truncation_does_not(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    data = bundle.archive.with_name(info.filename).read_bytes()
    check_superblock(data[:96], file_size=len(data), where="x")
    with pytest.raises(RefusedBundleError, match="truncated"):
        check_superblock(data[:96], file_size=200, where="x")


@pytest.mark.parametrize(("node", "methods"), [
    (KERNEL_AND_FUSE, (MountMethod.KERNEL, MountMethod.FUSE)),
    (Node(root=False, filesystems=frozenset({"squashfs"}), loop_device=True, fuse_device=True,
          squashfuse="/usr/bin/squashfuse"), (MountMethod.FUSE,)),
    (Node(root=True, filesystems=frozenset(), loop_device=True, fuse_device=True,
          squashfuse=None), ()),
    (Node(root=True, filesystems=frozenset({"squashfs"}), loop_device=False, fuse_device=False,
          squashfuse="/usr/bin/squashfuse"), ()),
])
def test_what_a_node_can_mount(node: Node, methods: tuple[MountMethod, ...]) -> None:
    assert node.methods() == methods
    assert choose_method(node, None) == (methods[0] if methods else None)


def test_a_method_the_node_cannot_do_is_an_error() -> None:
    fuse_only = Node(root=False, filesystems=frozenset({"squashfs"}), loop_device=True,
                     fuse_device=True, squashfuse="/usr/bin/squashfuse")
    with pytest.raises(BuilderError) as caught:
        choose_method(fuse_only, MountMethod.KERNEL)
    assert caught.value.what == ("this node cannot mount with kernel (it needs root, squashfs "
                                 "in /proc/filesystems and /dev/loop-control)")
    assert choose_method(fuse_only, MountMethod.FUSE) is MountMethod.FUSE


def test_mount_source_reads_mountinfo(tmp_path: Path) -> None:
    point = tmp_path / "a b"
    point.mkdir()
    escaped = str(point).replace(" ", "\\040")
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
        f"46 22 7:0 / {escaped} ro,nosuid,nodev - squashfs /dev/loop0 ro\n"
        f"47 46 0:41 / {escaped} ro,nosuid,nodev - fuse.squashfuse squashfuse ro\n")
    assert mount_source(point, mountinfo=info) == "fuse.squashfuse"  # the top one
    assert mount_source(tmp_path, mountinfo=info) is None
    assert mount_source(point, mountinfo=tmp_path / "missing") is None


def test_the_sidecar_lists_the_image_beside_the_archive(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    source = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                            transport=T)
    assert source.fs_image is not None
    assert source.fs_image.location == str(bundle.archive.with_name(info.filename))
    assert (source.fs_image.sha256, source.fs_image.size) == (info.sha256, info.size)
    assert source.sha256 == bundle.sha256  # the archive's, as before
    # the manifest promised is the sidecar's without "archive" and "image"
    assert source.expect.manifest is not None and "image" not in json.loads(
        source.expect.manifest)


@pytest.mark.parametrize("image", [
    {"kind": "erofs", "filename": "x.erofs", "sha256": "a" * 64, "size": 1},
    {"kind": "squashfs", "filename": "../x.squashfs", "sha256": "a" * 64, "size": 1},
    {"kind": "squashfs", "filename": "x.squashfs", "sha256": "A" * 64, "size": 1},
    {"kind": "squashfs", "filename": "x.squashfs", "sha256": "a" * 64, "size": 0},
    {"kind": "squashfs", "filename": "x.squashfs", "sha256": "a" * 64},
])
def test_a_malformed_image_entry_is_refused(tmp_path: Path, image: dict[str, object]) -> None:
    bundle = make_bundle(tmp_path / "dist")
    list_image(bundle, image)
    with pytest.raises(RefusedBundleError) as caught:
        resolve_source(str(bundle.archive), index=None, sha256=None, target=X86, transport=T)
    assert caught.value.what.startswith("unreadable image entry")
    assert "--extract" in str(caught.value.hint)


def test_which_way_an_install_goes(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    plain = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                           transport=T)
    add_image(bundle, tmp_path / "work")
    imaged = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                            transport=T)
    nothing = Node(root=False, filesystems=frozenset(), loop_device=False, fuse_device=False,
                   squashfuse=None)
    said: list[str] = []
    assert mount_method(plain, InstallOptions(node=KERNEL_AND_FUSE), said.append) is None
    assert mount_method(imaged, InstallOptions(node=KERNEL_AND_FUSE), said.append) \
        is MountMethod.KERNEL
    assert mount_method(imaged, InstallOptions(node=KERNEL_AND_FUSE, mount=MountMethod.FUSE),
                        said.append) is MountMethod.FUSE
    assert mount_method(imaged, InstallOptions(node=KERNEL_AND_FUSE, extract=True),
                        said.append) is None
    assert said == []
    assert mount_method(imaged, InstallOptions(node=nothing), said.append) is None
    assert said == ["this node can mount no squashfs image (no root for a loop mount, no "
                    "squashfuse): extracting the archive"]
    with pytest.raises(UsageError, match="lists no image"):
        mount_method(plain, InstallOptions(node=KERNEL_AND_FUSE, mount=MountMethod.KERNEL),
                     said.append)


def record(sha: str) -> EntryRecord:
    return EntryRecord(sha256=sha, name="demo", version="1.0", target=X86, arch="x86_64",
                       libc="gnu", input_digest="sha256:" + "0" * 64, glibc_floor=None, files=1,
                       unpacked_bytes=1, disk_bytes=4096, service_def=False, installed_at=1.0,
                       source="x", image="squashfs", mounted_with="kernel")


def test_a_mounted_entry_keeps_its_record_beside_its_image(tmp_path: Path) -> None:
    store = Store(root=tmp_path / "store")
    store.ensure()
    sha = "b" * 64
    store.entry_path(sha).mkdir()  # stands for the mount point
    store.image_file(sha).write_bytes(b"image")
    store.image_record_file(sha).write_text(json.dumps({"format_version": 1,
                                                        **record(sha).to_dict()}))
    found = store.record(sha)
    assert found == record(sha)
    assert store.records() == (record(sha),)
    assert store.discard_leftovers(sha) == 0  # whole: kept
    store.evict(sha)
    assert not store.entry_path(sha).exists()
    assert not store.image_file(sha).exists() and not store.image_record_file(sha).exists()


def test_an_image_without_its_record_is_a_leftover(tmp_path: Path) -> None:
    store = Store(root=tmp_path / "store")
    store.ensure()
    sha = "c" * 64
    store.entry_path(sha).mkdir()
    store.image_file(sha).write_bytes(b"image")
    assert store.record(sha) is None
    assert store.discard_leftovers(sha) == 1
    assert not store.entry_path(sha).exists() and not store.image_file(sha).exists()


def test_an_extracted_entry_record_is_unchanged(tmp_path: Path) -> None:
    data = record("d" * 64).to_dict()
    plain = {k: v for k, v in data.items() if k not in ("image", "mounted_with")}
    assert EntryRecord.from_dict(plain).to_dict() == plain


def test_the_catalog_lists_the_image_and_install_by_name_finds_it(tmp_path: Path) -> None:
    from builder.catalog import write_index

    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    plain = make_bundle(dist, name="plain")
    info = add_image(bundle, tmp_path / "work")
    index, _catalog = write_index(dist)
    data = json.loads(index.read_text())
    listed = {b["name"]: b for b in data["bundles"]}
    assert listed["demo"]["image"] == info.to_dict()
    assert "image" not in listed["plain"]  # indexes of bundles without images are unchanged
    source = resolve_source("demo", index=str(dist), sha256=None, target=X86, transport=T)
    assert source.fs_image is not None
    assert source.fs_image.location == str(dist / info.filename)
    assert (source.fs_image.sha256, source.fs_image.size) == (info.sha256, info.size)
    assert resolve_source("plain", index=str(dist), sha256=None, target=X86,
                          transport=T).fs_image is None
    assert plain.sha256 != bundle.sha256


def test_the_catalog_refuses_a_sidecar_whose_image_is_missing_or_differs(tmp_path: Path) -> None:
    from builder.catalog import write_index

    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    info = add_image(bundle, tmp_path / "work")
    image = dist / info.filename
    image.write_bytes(image.read_bytes()[:-1] + b"x")
    with pytest.raises(BuilderError, match="does not describe this image"):
        write_index(dist)
    image.unlink()
    with pytest.raises(BuilderError, match="which is not there"):
        write_index(dist)


def test_mounts_of_an_image_entry_whose_mount_went_away_is_an_error(tmp_path: Path) -> None:
    from builder.agent.errors import StoreError
    from builder.agent.mounts import mounts_for

    store = Store(root=tmp_path / "store")
    store.ensure()
    sha = "e" * 64
    store.entry_path(sha).mkdir()  # not mounted: a reboot
    store.image_record_file(sha).write_text(json.dumps(record(sha).to_dict()))
    store.set_name(record(sha))
    with pytest.raises(StoreError) as caught:
        mounts_for(store, "demo")
    assert caught.value.what == "the image of demo 1.0 is not mounted"
    assert "builder agent install" in str(caught.value.hint)


@pytest.mark.parametrize(("text", "allowed"), [
    ("# mount_max = 1000\nuser_allow_other\n", True),
    ("  user_allow_other   # for the agent\n", True),
    ("#user_allow_other\n", False),
    ("mount_max = 1000\n", False),
    ("user_allow_others\n", False),
    (None, False),
])
def test_fuse_conf_decides_whether_users_may_allow_other(tmp_path: Path, text: str | None,
                                                         allowed: bool) -> None:
    conf = tmp_path / "fuse.conf"
    if text is not None:
        conf.write_text(text)
    assert fuse_allows_other(conf) is allowed


@pytest.mark.parametrize(("allow_other", "options"), [
    (True, "ro,nosuid,nodev,allow_other"), (False, "ro,nosuid,nodev")])
def test_squashfuse_asks_for_allow_other_only_where_fuse_grants_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_other: bool,
        options: str) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(mount, "_run", lambda command, **_: ran.append(command))
    node = Node(root=False, filesystems=frozenset(), loop_device=False, fuse_device=True,
                squashfuse="/usr/bin/squashfuse", allow_other=allow_other)
    mount_image(tmp_path / "i.squashfs", tmp_path / "at", method=MountMethod.FUSE, node=node)
    mount_image(tmp_path / "i.squashfs", tmp_path / "at", method=MountMethod.KERNEL,
                node=KERNEL_AND_FUSE)
    assert ran == [["/usr/bin/squashfuse", "-o", options, str(tmp_path / "i.squashfs"),
                    str(tmp_path / "at")],
                   ["mount", "-t", "squashfs", "-o", "ro,nosuid,nodev,loop",
                    str(tmp_path / "i.squashfs"), str(tmp_path / "at")]]


def test_a_mount_only_its_user_can_read_is_said(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    imaged = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                            transport=T)
    said: list[str] = []
    private = Node(root=False, filesystems=frozenset(), loop_device=False, fuse_device=True,
                   squashfuse="/usr/bin/squashfuse")
    assert mount_method(imaged, InstallOptions(node=private), said.append) is MountMethod.FUSE
    assert said == ["the squashfuse mount is readable by this user only (no allow_other): add "
                    "user_allow_other to /etc/fuse.conf for containers that run as other users"]
    shared = Node(root=False, filesystems=frozenset(), loop_device=False, fuse_device=True,
                  squashfuse="/usr/bin/squashfuse", allow_other=True)
    said.clear()
    assert mount_method(imaged, InstallOptions(node=shared), said.append) is MountMethod.FUSE
    assert said == []


# -- install_mounted without a mount: the image's tree unpacked where it would be mounted ------


class FakeMounts:
    """Stands for the kernel: ``mount_image`` unpacks the image (unsquashfs) onto the mount
    point, ``unmount`` empties it; what was mounted and unmounted is recorded, and the command
    the real ``mount_image`` builds for the method and node (``mount -t squashfs`` or
    ``squashfuse``) is recorded instead of run."""

    def __init__(self) -> None:
        self.mounted: set[Path] = set()
        self.calls: list[tuple[str, Path]] = []
        self.commands: list[list[str]] = []

    def mount_image(self, image: Path, at: Path, *, method: MountMethod, node: Node) -> None:
        self.calls.append(("mount", at))
        mount_image(image, at, method=method, node=node)  # its _run records the command
        subprocess.run(["unsquashfs", "-q", "-n", "-f", "-d", str(at), str(image)],
                       check=True, capture_output=True)
        self.mounted.add(at)

    def run(self, command: list[str], **_: object) -> None:
        self.commands.append(command)

    def is_mounted(self, path: Path) -> bool:
        return path in self.mounted

    def unmount(self, path: Path, *, node: Node | None = None) -> None:
        self.calls.append(("unmount", path))
        self.mounted.discard(path)
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch) -> FakeMounts:
    need_unsquashfs()
    fake = FakeMounts()
    monkeypatch.setattr(image_module, "mount_image", fake.mount_image)
    monkeypatch.setattr(image_module, "is_mounted", fake.is_mounted)
    monkeypatch.setattr(image_module, "unmount", fake.unmount)
    monkeypatch.setattr(mount, "_run", fake.run)
    return fake


def need_unsquashfs() -> None:
    if shutil.which("unsquashfs") is None:
        pytest.skip("unsquashfs not installed (Debian: apt-get install squashfs-tools)")


def install_image(location: str, store: Store, *, index: str | None = None,
                  method: MountMethod = MountMethod.KERNEL, progress: bool = False,
                  log: Callable[[str], None] = lambda _m: None) -> InstallResult:
    source = resolve_source(location, index=index, sha256=None, target=X86, transport=T)
    assert source.fs_image is not None
    return install(source, store, transport=T, log=log,
                   options=InstallOptions(node=KERNEL_AND_FUSE, mount=method,
                                          progress=progress))


def image_of(bundle: Fabricated) -> Path:
    return bundle.archive.with_name(json.loads(bundle.sidecar.read_text())["image"]["filename"])


def assert_nothing_left(store: Store) -> None:
    """A refused image leaves no entry, image, record or work directory."""
    for sub in ("entries", "images", "tmp"):
        found = sorted((store.root / sub).iterdir()) if (store.root / sub).is_dir() else []
        assert found == [], sub


def test_a_mounted_install_records_what_it_mounted(tmp_path: Path, mounts: FakeMounts) -> None:
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    store = Store(root=tmp_path / "store", clock=lambda: 1234.5)
    result = install_image(str(bundle.archive), store)
    entry = store.entry_path(info.sha256)
    assert result.fresh and result.path == entry
    assert mounts.calls == [("mount", entry)]
    assert mounts.commands == [["mount", "-t", "squashfs", "-o", "ro,nosuid,nodev,loop",
                                str(store.image_file(info.sha256)), str(entry)]]
    assert store.image_file(info.sha256).read_bytes() == image_of(bundle).read_bytes()
    manifest = (entry / "manifest.json").read_bytes()
    assert result.record == EntryRecord(
        sha256=info.sha256, name="demo", version="1.0", target=X86, arch="x86_64", libc="gnu",
        input_digest=bundle.manifest["input_digest"], glibc_floor=None,
        files=bundle.manifest["sizes"]["files"],
        unpacked_bytes=bundle.manifest["sizes"]["unpacked_bytes"],
        disk_bytes=info.size, service_def=True, installed_at=1234.5,
        source=str(image_of(bundle)), manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        image="squashfs", mounted_with="kernel")
    assert store.record(info.sha256) == result.record  # written beside the image
    assert list(store.tmp_dir.iterdir()) == []
    again = install_image(str(bundle.archive), store)
    assert not again.fresh and again.record == result.record
    assert mounts.calls == [("mount", entry)]  # one mount per image


def test_a_mounted_bundle_without_service_def(tmp_path: Path, mounts: FakeMounts) -> None:
    bundle = make_bundle(tmp_path / "dist", service_def=False,
                         overrides={"glibc_floor": "2.28", "glibc_floor_file": "app/bin/run"})
    add_image(bundle, tmp_path / "work")
    result = install_image(str(bundle.archive), Store(root=tmp_path / "store"))
    assert result.record.service_def is False
    assert result.record.glibc_floor == "2.28"  # the manifest's, recorded


def test_an_image_of_several_reads_is_copied_whole(tmp_path: Path, mounts: FakeMounts) -> None:
    """An image padded past one read (squashfs ignores what follows ``bytes_used``), vouched
    for with its padding: copied and counted whole."""
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    data = image_of(bundle).read_bytes() + bytes(2 * CHUNK + 1)
    image_of(bundle).write_bytes(data)
    listed = json.loads(bundle.sidecar.read_text())["image"]
    sha = hashlib.sha256(data).hexdigest()
    list_image(bundle, {**listed, "sha256": sha, "size": len(data)})
    store = Store(root=tmp_path / "store")
    result = install_image(str(bundle.archive), store)
    assert result.record.disk_bytes == len(data)
    assert store.image_file(sha).read_bytes() == data


def resized(bundle: Fabricated, data: bytes) -> None:
    """The image file replaced by ``data``; the sidecar's promise unchanged."""
    image_of(bundle).write_bytes(data)


@pytest.mark.parametrize("extra", [1, CHUNK, 3 * CHUNK])
def test_an_image_longer_than_promised_is_refused_unread(tmp_path: Path, mounts: FakeMounts,
                                                         extra: int) -> None:
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    resized(bundle, image_of(bundle).read_bytes() + bytes(extra))
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError) as caught:
        install_image(str(bundle.archive), store)
    read = int(caught.value.what.split()[5])
    assert caught.value.what == (f"the image has more than {read} bytes, the sidecar or "
                                 f"catalog says {info.size}")
    # reading stopped past the promise (a huge file is not copied whole)
    assert info.size < read <= min(info.size + extra, info.size + CHUNK)
    assert caught.value.where == str(image_of(bundle))
    assert caught.value.hint == "nothing was mounted"
    assert mounts.calls == []
    assert_nothing_left(store)


def test_an_image_shorter_than_promised_is_refused(tmp_path: Path, mounts: FakeMounts) -> None:
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    resized(bundle, image_of(bundle).read_bytes()[:-1])
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError) as caught:
        install_image(str(bundle.archive), store)
    assert caught.value.what == (f"the image has {info.size - 1} bytes, the sidecar or "
                                 f"catalog says {info.size}")
    assert mounts.calls == []
    assert_nothing_left(store)


def test_an_image_with_other_bytes_is_a_hash_mismatch(tmp_path: Path, mounts: FakeMounts) -> None:
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    data = bytearray(image_of(bundle).read_bytes())
    data[-1] ^= 0xFF
    resized(bundle, bytes(data))
    store = Store(root=tmp_path / "store")
    with pytest.raises(HashMismatchError) as caught:
        install_image(str(bundle.archive), store)
    assert (caught.value.expected, caught.value.actual) == (info.sha256,
                                                            hashlib.sha256(data).hexdigest())
    assert caught.value.what.startswith("sha256 mismatch for bundle image\n")
    assert caught.value.where == str(image_of(bundle))
    assert caught.value.hint == ("the sidecar or catalog promises other bytes; nothing was "
                                 "mounted")
    assert mounts.calls == []
    assert_nothing_left(store)


def test_a_listed_image_that_is_not_there(tmp_path: Path, mounts: FakeMounts) -> None:
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    location = str(image_of(bundle))
    image_of(bundle).unlink()
    store = Store(root=tmp_path / "store")
    with pytest.raises(BuilderError) as caught:
        install_image(str(bundle.archive), store)
    assert not isinstance(caught.value, RefusedBundleError)
    assert caught.value.what == "the sidecar lists an image that is not there"
    assert caught.value.where == location
    assert caught.value.hint == "copy the image beside the archive, or install with --extract"
    assert_nothing_left(store)


def test_a_downloaded_image_is_checked(tmp_path: Path, mounts: FakeMounts) -> None:
    """Over HTTP the transport hashes and bounds the download with the sidecar's promise."""
    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    info = add_image(bundle, tmp_path / "work")
    good = image_of(bundle).read_bytes()
    store = Store(root=tmp_path / "store")
    with serve_directory(dist, handler=type("Quiet", (SimpleHTTPRequestHandler,), {
            "log_message": lambda *_a: None})) as port:
        url = f"http://127.0.0.1:{port}/{bundle.archive.name}"
        resized(bundle, good + b"x" * 100)  # longer: cut off at the promised size
        with pytest.raises(BuilderError) as longer:
            install_image(url, store)
        flipped = bytearray(good)
        flipped[-1] ^= 0xFF
        resized(bundle, bytes(flipped))  # the same size, other bytes
        with pytest.raises(BuilderError) as other:
            install_image(url, store)
        assert mounts.calls == []
        assert_nothing_left(store)
        resized(bundle, good)
        result = install_image(url, store)
    assert longer.value.what == (f"demo: the source sends more than the {info.size} bytes "
                                 "expected; nothing was kept")
    assert isinstance(other.value, HashMismatchError)
    assert (other.value.expected, other.value.actual) == (
        info.sha256, hashlib.sha256(flipped).hexdigest())
    assert result.record.source == f"http://127.0.0.1:{port}/{info.filename}"
    assert result.record.disk_bytes == info.size
    assert store.image_file(info.sha256).read_bytes() == good


def test_a_downloaded_image_shows_its_progress_when_asked(
        tmp_path: Path, mounts: FakeMounts, capsys: pytest.CaptureFixture[str]) -> None:
    """``agent install`` on a terminal: the image's download draws a bar named for the
    bundle; without progress nothing is drawn."""
    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    info = add_image(bundle, tmp_path / "work")
    capsys.readouterr()
    with serve_directory(dist, handler=type("Quiet", (SimpleHTTPRequestHandler,), {
            "log_message": lambda *_a: None})) as port:
        url = f"http://127.0.0.1:{port}/{bundle.archive.name}"
        install_image(url, Store(root=tmp_path / "quiet"))
        assert capsys.readouterr().err == ""
        install_image(url, Store(root=tmp_path / "store"), progress=True)
    err = capsys.readouterr().err
    total = info.size / (1 << 20)
    assert err.endswith(f"\rdemo [{'#' * 24}] {total:.1f}/{total:.1f} MiB 100%\n")
    assert err.count("\n") == 1 and err.startswith("\rdemo [")


def test_a_download_for_a_sidecar_without_a_name_is_called_bundle_image(
        tmp_path: Path, mounts: FakeMounts) -> None:
    """The download's own refusal names what it fetches: the bundle's name, or "bundle
    image" when the sidecar gives none."""
    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    info = add_image(bundle, tmp_path / "work")
    sidecar = json.loads(bundle.sidecar.read_text())
    del sidecar["name"]
    bundle.sidecar.write_bytes(canonical(sidecar))
    resized(bundle, image_of(bundle).read_bytes() + b"x" * 100)
    store = Store(root=tmp_path / "store")
    with serve_directory(dist, handler=type("Quiet", (SimpleHTTPRequestHandler,), {
            "log_message": lambda *_a: None})) as port, pytest.raises(BuilderError) as caught:
        install_image(f"http://127.0.0.1:{port}/{bundle.archive.name}", store)
    assert caught.value.what == (f"bundle image: the source sends more than the {info.size} "
                                 "bytes expected; nothing was kept")
    assert mounts.calls == []
    assert_nothing_left(store)


@pytest.mark.parametrize(("data", "message"), [
    (bytes(300), "not a squashfs image (no squashfs magic)"),
    (superblock(bytes_used=8192) + bytes(4000), "not a sound squashfs image: says it uses "
     "8192 bytes, the file has 4096 (truncated?)"),
], ids=["no-magic", "truncated"])
def test_an_image_vouched_for_that_is_no_squashfs_is_refused_unmounted(
        tmp_path: Path, mounts: FakeMounts, data: bytes, message: str) -> None:
    """The sidecar's sha256 and size are right, the bytes are no sound squashfs: refused after
    the hash, before any mount, nothing left."""
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    image_of(bundle).write_bytes(data)
    listed = json.loads(bundle.sidecar.read_text())["image"]
    list_image(bundle, {**listed, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError) as caught:
        install_image(str(bundle.archive), store)
    assert caught.value.what == message
    assert caught.value.where == str(image_of(bundle))
    assert caught.value.hint == "the image is malformed or malicious; nothing was mounted"
    assert mounts.calls == []
    assert_nothing_left(store)


def retree(bundle: Fabricated, work: Path, tamper: Callable[[Path], None]) -> str:
    """The bundle's image rebuilt from its tree changed by ``tamper``, and vouched for by the
    sidecar (its sha256 and size): only the mounted tree's checks can refuse it. Returns the
    image's location."""
    image = image_of(bundle)
    tree = work / "tree"
    work.mkdir()
    subprocess.run(["unsquashfs", "-q", "-n", "-d", str(tree), str(image)], check=True,
                   capture_output=True)
    tamper(tree)
    image.unlink()
    subprocess.run(["mksquashfs", str(tree), str(image), "-quiet", "-no-progress", "-all-root",
                    "-noappend"], check=True, capture_output=True)
    shutil.rmtree(work)
    data = image.read_bytes()
    listed = json.loads(bundle.sidecar.read_text())["image"]
    list_image(bundle, {**listed, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    return str(image)


def _replace(path: Path, by: Callable[[Path], object]) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    by(path)


MOUNTED_REFUSALS: list[tuple[str, Callable[[Path], object], str]] = [
    ("extras", lambda t: ((t / "zz").write_text("x"), (t / "aa").mkdir()),
     "the image holds aa, zz beside manifest.json, service-def.json and app/"),
    ("app-link", lambda t: _replace(t / "app", lambda p: p.symlink_to("/")),
     "the image has no app/ directory"),
    ("app-file", lambda t: _replace(t / "app", lambda p: p.write_text("x")),
     "the image has no app/ directory"),
    ("no-app", lambda t: shutil.rmtree(t / "app"), "the image has no app/ directory"),
    ("manifest-link", lambda t: _replace(t / "manifest.json",
                                         lambda p: p.symlink_to("app/lib/data.txt")),
     "the image has no manifest.json"),
    ("manifest-dir", lambda t: _replace(t / "manifest.json", lambda p: p.mkdir()),
     "the image has no manifest.json"),
    ("no-manifest", lambda t: (t / "manifest.json").unlink(), "the image has no manifest.json"),
    ("manifest-huge", lambda t: (t / "manifest.json").write_bytes(b" " * (MAX_MANIFEST_BYTES + 1)),
     "manifest.json is too large"),
    ("record-changed", lambda t: (t / RECORD_FILE).write_bytes(
        (t / RECORD_FILE).read_bytes() + b"\n"),
     "the RECORD is not the one manifest.json names"),
    ("no-record", lambda t: (t / RECORD_FILE).unlink(),
     "cannot read the mounted image: No such file or directory"),
]


@pytest.mark.parametrize(("tamper", "message"), [(t, m) for _n, t, m in MOUNTED_REFUSALS],
                         ids=[n for n, _t, _m in MOUNTED_REFUSALS])
def test_a_mounted_tree_that_is_not_a_bundle_is_refused_and_unmounted(
        tmp_path: Path, mounts: FakeMounts, tamper: Callable[[Path], None], message: str
) -> None:
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    location = retree(bundle, tmp_path / "retree", tamper)
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError) as caught:
        install_image(str(bundle.archive), store)
    assert caught.value.what == message
    assert caught.value.where == location
    assert caught.value.hint == "the image is malformed or malicious; nothing was mounted"
    sha = json.loads(bundle.sidecar.read_text())["image"]["sha256"]
    assert mounts.calls == [("mount", store.entry_path(sha)), ("unmount", store.entry_path(sha))]
    assert_nothing_left(store)


def test_a_manifest_of_the_largest_size_is_read(tmp_path: Path, mounts: FakeMounts) -> None:
    """4 MiB exactly is not too large: the manifest is read and compared with the promise."""
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    location = retree(bundle, tmp_path / "retree",
                      lambda t: (t / "manifest.json").write_bytes(b" " * MAX_MANIFEST_BYTES))
    store = Store(root=tmp_path / "store")
    with pytest.raises(BuilderError) as caught:
        install_image(str(bundle.archive), store)
    assert caught.value.what != "manifest.json is too large"
    assert "manifest.json" in caught.value.what
    assert caught.value.where == location  # checked as the image's manifest
    assert_nothing_left(store)


def test_a_mounted_bundle_without_a_record(tmp_path: Path, mounts: FakeMounts) -> None:
    """Bundles built before RECORDs have none to check; their trees still are."""
    bundle = make_bundle(tmp_path / "dist", record=False)
    info = add_image(bundle, tmp_path / "work")
    result = install_image(str(bundle.archive), Store(root=tmp_path / "store"))
    assert result.record.sha256 == info.sha256
    assert not (result.path / RECORD_FILE).exists()


# -- an entry whose mount went away (a reboot): mounted again, its image hashed again first ----


def test_an_entry_whose_mount_went_away_is_mounted_again(tmp_path: Path,
                                                         mounts: FakeMounts) -> None:
    """Each reboot: the next install hashes the stored image, mounts it with the method asked
    now (the node's squashfuse, or a loop mount) and records that method."""
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    store = Store(root=tmp_path / "store", clock=lambda: 1234.5)
    first = install_image(str(bundle.archive), store, method=MountMethod.FUSE)
    entry = store.entry_path(info.sha256)
    image = store.image_file(info.sha256)
    manifest = (entry / "manifest.json").read_bytes()
    said: list[str] = []
    results = []
    for method in (MountMethod.KERNEL, MountMethod.FUSE):
        mounts.unmount(entry)  # what a reboot does: the mount point stays, empty
        again = install_image(str(bundle.archive), store, method=method, log=said.append)
        assert not again.fresh and again.path == entry
        assert (entry / "manifest.json").read_bytes() == manifest
        # the record says how it is mounted now; the rest is the first install's
        assert again.record == dataclasses.replace(first.record, mounted_with=str(method))
        assert store.record(info.sha256) == again.record  # written beside the image
        results.append(again)
    fuse = ["/usr/bin/squashfuse", "-o", "ro,nosuid,nodev,allow_other", str(image), str(entry)]
    assert mounts.commands == [fuse, ["mount", "-t", "squashfs", "-o", "ro,nosuid,nodev,loop",
                                      str(image), str(entry)], fuse]
    assert said == [f"mounting {image} again (kernel): its mount had gone",
                    f"mounting {image} again (fuse): its mount had gone"]
    assert image.read_bytes() == image_of(bundle).read_bytes()
    assert list(store.tmp_dir.iterdir()) == []
    last = install_image(str(bundle.archive), store, log=said.append)
    assert last.record == results[-1].record and len(said) == 2  # mounted: nothing to do
    assert len(mounts.commands) == 3


def reboot_and_change(tmp_path: Path, mounts: FakeMounts,
                      change: Callable[[Path], object]) -> tuple[Fabricated, Store, str]:
    """A bundle installed mounted, its mount gone, then its stored image changed."""
    bundle = make_bundle(tmp_path / "dist")
    info = add_image(bundle, tmp_path / "work")
    store = Store(root=tmp_path / "store")
    install_image(str(bundle.archive), store)
    mounts.unmount(store.entry_path(info.sha256))
    change(store.image_file(info.sha256))
    return bundle, store, info.sha256


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_to_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("change", "kind", "detail"), [
    (flip_last_byte, "content", "sha256 {actual}, not {sha}"),
    (truncate_to_half, "content", "sha256 {actual}, not {sha}"),
    (Path.unlink, "removed", "the image is gone"),
], ids=["changed", "truncated", "gone"])
def test_a_damaged_stored_image_is_not_mounted_but_installed_again(
        tmp_path: Path, mounts: FakeMounts, change: Callable[[Path], object], kind: str,
        detail: str) -> None:
    """As a damaged extracted entry is repaired: the stored image is never mounted, the image
    is fetched (and checked) again, the entry replaced whole, and the install says what was
    wrong."""
    bundle, store, sha = reboot_and_change(tmp_path, mounts, change)
    image = store.image_file(sha)
    actual = hashlib.sha256(image.read_bytes()).hexdigest() if image.exists() else ""
    said: list[str] = []
    result = install_image(str(bundle.archive), store, log=said.append)
    expected = Difference(f"images/{sha}.squashfs", kind,
                          detail.format(actual=actual, sha=sha))
    assert result.repaired == (expected,) and not result.fresh
    assert said == [f"the stored image of demo 1.0 ({sha[:16]}) is damaged ({expected.detail}): "
                    "installing it again",
                    f"mounting {image_of(bundle)} (kernel)"]
    assert image.read_bytes() == image_of(bundle).read_bytes()
    assert store.record(sha) == result.record
    assert (result.path / "manifest.json").is_file()
    entry = store.entry_path(sha)
    # the first mount, the reboot, then one mount: of the image fetched again, never the damaged
    assert [c[0] for c in mounts.calls] == ["mount", "unmount", "mount"]
    assert mounts.calls[-1] == ("mount", entry)
    assert list(store.tmp_dir.iterdir()) == []
    again = install_image(str(bundle.archive), store)  # sound and mounted: nothing to do
    assert again.repaired == () and len(mounts.calls) == 3


def test_a_repair_that_cannot_fetch_the_image_leaves_a_leftover_not_a_broken_entry(
        tmp_path: Path, mounts: FakeMounts) -> None:
    """The record goes first: when the image cannot be fetched again, the entry is a leftover
    the next install removes, not an entry recorded with a damaged image."""
    bundle, store, sha = reboot_and_change(tmp_path, mounts, flip_last_byte)
    kept = image_of(bundle).read_bytes()
    image_of(bundle).unlink()  # the source lost its image too
    with pytest.raises(BuilderError) as caught:
        install_image(str(bundle.archive), store)
    assert caught.value.what == "the sidecar lists an image that is not there"
    assert store.record(sha) is None and not store.image_file(sha).exists()
    assert [c[0] for c in mounts.calls] == ["mount", "unmount"]  # the damaged one: never
    assert not store.entry_path(sha).exists()  # the failed repair cleaned up after itself
    store.entry_path(sha).mkdir()  # what an install killed after making its mount point leaves
    image_of(bundle).write_bytes(kept)  # the source is whole again: a fresh install
    said: list[str] = []
    result = install_image(str(bundle.archive), store, log=said.append)
    assert result.fresh and result.repaired == ()
    assert said == [f"removed leftovers of an interrupted install of {sha[:16]}",
                    f"mounting {image_of(bundle)} (kernel)"]


def test_a_repair_fetches_the_image_as_asked_method_node_and_progress(
        tmp_path: Path, mounts: FakeMounts, capsys: pytest.CaptureFixture[str]) -> None:
    """The image downloaded again (the transport), mounted with the method and the node's
    squashfuse asked for, its download drawn with --progress."""
    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    info = add_image(bundle, tmp_path / "work")
    node = dataclasses.replace(KERNEL_AND_FUSE, squashfuse="/opt/fuse/bin/squashfuse")
    options = InstallOptions(node=node, mount=MountMethod.FUSE, progress=True)
    store = Store(root=tmp_path / "store")
    entry, image = store.entry_path(info.sha256), store.image_file(info.sha256)
    with serve_directory(dist, handler=type("Quiet", (SimpleHTTPRequestHandler,), {
            "log_message": lambda *_a: None})) as port:
        source = resolve_source(f"http://127.0.0.1:{port}/{bundle.archive.name}", index=None,
                                sha256=None, target=X86, transport=T)
        install(source, store, transport=T, options=options)
        mounts.unmount(entry)
        flip_last_byte(image)
        capsys.readouterr()
        result = install(source, store, transport=T, options=options)
    assert [d.kind for d in result.repaired] == ["content"]
    assert mounts.commands[-1] == ["/opt/fuse/bin/squashfuse", "-o",
                                   "ro,nosuid,nodev,allow_other", str(image), str(entry)]
    assert capsys.readouterr().err.endswith(" MiB 100%\n")
    assert image.read_bytes() == image_of(bundle).read_bytes()


def test_a_stored_image_that_is_no_squashfs_is_not_mounted_again(
        tmp_path: Path, mounts: FakeMounts) -> None:
    """The image in the store vouched for by its record (its name is the sha256 of its bytes)
    but truncated by whoever wrote it: the superblock check runs again before any mount, and
    the install goes to fetch the image again (here from nowhere: a clear error)."""
    store = Store(root=tmp_path / "store")
    store.ensure()
    data = superblock(bytes_used=8192) + bytes(4000)
    sha = hashlib.sha256(data).hexdigest()
    store.image_file(sha).write_bytes(data)
    store.image_record_file(sha).write_text(json.dumps(record(sha).to_dict()))
    store.entry_path(sha).mkdir()  # the mount point, not mounted
    assert image_module.stored_image_damage(store, sha) == Difference(
        f"images/{sha}.squashfs", "content",
        "not a sound squashfs image: says it uses 8192 bytes, the file has 4096 (truncated?)")
    bundle = make_bundle(tmp_path / "dist")
    source = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                            transport=T)
    fs_image = FsImage(kind="squashfs", location=str(tmp_path / "nowhere"), sha256=sha,
                       size=len(data))
    said: list[str] = []
    with pytest.raises(BuilderError) as caught:
        image_module.install_mounted(source, fs_image, store, transport=T,
                                     method=MountMethod.KERNEL, node=KERNEL_AND_FUSE,
                                     progress=False, log=said.append)
    assert caught.value.what == "the sidecar lists an image that is not there"
    assert said[0].endswith("is damaged (not a sound squashfs image: says it uses 8192 bytes, "
                            "the file has 4096 (truncated?)): installing it again")
    assert mounts.calls == []
    assert store.record(sha) is None and not store.image_file(sha).exists()


def replace_with_a_directory(path: Path) -> None:
    path.unlink()
    (path / "sub").mkdir(parents=True)


def test_an_unreadable_stored_image_is_damage_too(tmp_path: Path, mounts: FakeMounts) -> None:
    bundle, store, sha = reboot_and_change(tmp_path, mounts, replace_with_a_directory)
    expected = Difference(f"images/{sha}.squashfs", "unreadable",
                          "cannot be read: Is a directory")  # read() of a directory: EISDIR
    assert image_module.stored_image_damage(store, sha) == expected
    result = install_image(str(bundle.archive), store)
    assert result.repaired == (expected,)
    assert store.image_file(sha).read_bytes() == image_of(bundle).read_bytes()


def test_install_mounted_says_whether_it_mounted_afresh_or_again(
        tmp_path: Path, mounts: FakeMounts) -> None:
    bundle = make_bundle(tmp_path / "dist")
    add_image(bundle, tmp_path / "work")
    source = resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                            transport=T)
    assert source.fs_image is not None
    store = Store(root=tmp_path / "store")

    def once() -> tuple[bool, bool]:
        assert source.fs_image is not None
        done = image_module.install_mounted(
            source, source.fs_image, store, transport=T, method=MountMethod.KERNEL,
            node=KERNEL_AND_FUSE, progress=False, log=lambda _m: None)
        assert store.record(source.fs_image.sha256) == done.record
        return done.fresh, done.remounted

    assert once() == (True, False)
    assert once() == (False, False)
    mounts.unmount(store.entry_path(source.fs_image.sha256))
    assert once() == (False, True)
    assert once() == (False, False)
