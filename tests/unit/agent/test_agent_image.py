"""Mounted entries, the parts that need no mount: what the sidecar lists, the superblock check
that runs before any mount, which mount a node can do, the store's hooks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from agent_factories import X86, make_bundle
from image_factories import add_image, list_image

from builder.agent import InstallOptions, NetAgentTransport, Store, mount
from builder.agent.errors import RefusedBundleError
from builder.agent.image import SQUASHFS_MAGIC, check_superblock
from builder.agent.install import mount_method
from builder.agent.mount import (
    MountMethod,
    Node,
    choose_method,
    fuse_allows_other,
    mount_image,
    mount_source,
)
from builder.agent.source import resolve_source
from builder.agent.store import EntryRecord
from builder.errors import BuilderError, UsageError

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
