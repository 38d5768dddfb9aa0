"""Installing a bundle as a mounted image: no extraction.

Under the entry's lock (the key is the image's sha256, which vouched for its bytes first; one
bundle installed as archive and as image is two entries): the image is copied (or downloaded)
into the store while it is hashed, its size and sha256 compared with the sidecar's or catalog's,
its squashfs superblock checked (magic, version, block size, compressor, tables inside the
file) -- a wrong hash, a truncated file or something that is no squashfs is refused before
anything mounts it. Then it is mounted read-only (``nosuid,nodev``) on the entry's directory
``entries/<sha256>/`` (the kernel where the agent may, ``squashfuse`` otherwise), the mounted
``manifest.json`` is checked against the promise as an extracted one is, the RECORD must be the
one it names, the root may hold nothing but ``manifest.json``, ``service-def.json`` and
``app/``; only then is the record written (``images/<sha256>.complete``), last. A refusal
unmounts and removes everything. A second install of the same image waits for the lock and
finds the entry mounted: one mount per image. An entry whose mount went away (a reboot) is
mounted again, its image hashed and its superblock checked again first; a stored image that
fails (gone, changed, truncated) is fetched again and the entry replaced, as a damaged extracted
entry is repaired.

``agent mounts`` is unchanged: ``entries/<sha256>/app`` is a directory of the mount.
``agent verify`` reads every file of the mount against the RECORD. ``gc`` and ``evict``
unmount (lazily) through the store.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder import net
from builder.agent.errors import RefusedBundleError
from builder.agent.manifest_check import check_manifest
from builder.agent.mount import MountMethod, Node, is_mounted, mount_image, unmount
from builder.agent.source import FsImage, ResolvedSource, Transport
from builder.agent.store import EntryRecord, Store
from builder.bundle.record import RECORD_FILE, Difference
from builder.errors import BuilderError, HashMismatchError
from builder.fsutil import CHUNK, atomic_write_text, canonical_json, rmtree
from builder.layout import APP, MANIFEST, SERVICE_DEF

MAX_MANIFEST_BYTES = 4 << 20
SQUASHFS_MAGIC = 0x73717368  # "hsqs"
_SUPERBLOCK = struct.Struct("<IIIIIHHHHHHQQQQQQQQ")  # 96 bytes
_COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
_NO_TABLE = 0xFFFFFFFFFFFFFFFF


class RefusedImageError(RefusedBundleError):
    """An image the agent will not mount."""

    def __init__(self, what: str, *, where: str,
                 hint: str = "the image is malformed or malicious; nothing was mounted") -> None:
        super().__init__(what, where=where, hint=hint)


@dataclass(frozen=True, slots=True, kw_only=True)
class MountedInstall:
    record: EntryRecord
    fresh: bool  # False: the entry was there (mounted again if its mount had gone)
    remounted: bool = False
    # what was wrong with the stored image of the entry found, which this call replaced
    repaired: Difference | None = None


def check_superblock(head: bytes, *, file_size: int, where: str) -> None:
    """Is this a squashfs 4.0 image that fits in its file? (before any mount reads it)"""
    if len(head) < _SUPERBLOCK.size:
        raise RefusedImageError(f"not a squashfs image: {len(head)} bytes, shorter than a "
                                 "superblock", where=where)
    (magic, inodes, _mkfs_time, block_size, _fragments, compression, block_log, _flags,
     _ids, major, minor, _root, bytes_used, *tables) = _SUPERBLOCK.unpack_from(head)
    problems = []
    if magic != SQUASHFS_MAGIC:
        raise RefusedImageError("not a squashfs image (no squashfs magic)", where=where)
    if (major, minor) != (4, 0):
        problems.append(f"squashfs version {major}.{minor}, not 4.0")
    if not 4096 <= block_size <= 1 << 20 or block_size != 1 << block_log:
        problems.append(f"block size {block_size} (log {block_log})")
    if compression not in _COMPRESSORS:
        problems.append(f"unknown compressor {compression}")
    if inodes == 0:
        problems.append("no inodes")
    if bytes_used > file_size:
        problems.append(f"says it uses {bytes_used} bytes, the file has {file_size} "
                        "(truncated?)")
    if any(t != _NO_TABLE and t >= bytes_used for t in tables):
        problems.append("a table lies outside the image")
    if problems:
        raise RefusedImageError("not a sound squashfs image: " + "; ".join(problems),
                                 where=where)


def install_mounted(source: ResolvedSource, image: FsImage, store: Store, *,
                    transport: Transport, method: MountMethod, node: Node, progress: bool,
                    log: Callable[[str], None]) -> MountedInstall:
    """The bundle's image, checked and mounted as the entry ``image.sha256`` (see above)."""
    sha = image.sha256
    with store.open_entry(sha, log=log) as found:
        fresh, remounted, repaired = found is None, False, None
        if found is None:
            record = _install_locked(source, image, store, transport=transport, method=method,
                                     node=node, progress=progress, log=log)
        elif not is_mounted(store.entry_path(sha)):
            repaired = stored_image_damage(store, sha)
            if repaired is None:
                record = _remount(found, store, method=method, node=node, log=log)
                remounted = True
            else:  # as an extracted entry is repaired: replaced whole, and said
                log(f"the stored image of {found.name} {found.version} ({sha[:16]}) is "
                    f"damaged ({repaired.detail}): installing it again")
                # the record first: a repair cut short leaves a leftover, not a broken entry
                store.image_record_file(sha).unlink()
                store.discard_leftovers(sha)
                record = _install_locked(source, image, store, transport=transport,
                                         method=method, node=node, progress=progress, log=log)
        else:
            record = found
        store.installed(record)
    return MountedInstall(record=record, fresh=fresh, remounted=remounted, repaired=repaired)


def _copy_hashed(src: Path, dest: Path, *, limit: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    count = 0
    with src.open("rb") as fin, dest.open("xb") as fout:
        while chunk := fin.read(CHUNK):
            count += len(chunk)
            if count > limit:
                break
            digest.update(chunk)
            fout.write(chunk)
    return digest.hexdigest(), count


def _fetch_checked(image: FsImage, dest: Path, *, transport: Transport, progress: bool,
                   what: str) -> None:
    """The image at ``dest``, its size and sha256 those promised (else refused, removed)."""
    local = net.local_path(image.location)
    try:
        if local is None:
            transport.fetch_to(image.location, dest, expected_sha256=image.sha256,
                               progress=progress, what=what, max_bytes=image.size)
            actual, size = image.sha256, dest.stat().st_size  # fetch_to hashed the download
        else:
            actual, size = _copy_hashed(Path(local), dest, limit=image.size)
    except FileNotFoundError as exc:
        raise BuilderError("the sidecar lists an image that is not there", where=image.location,
                           hint="copy the image beside the archive, or install with --extract"
                           ) from exc
    if size != image.size:
        raise RefusedImageError(f"the image has {'more than ' if size > image.size else ''}"
                                 f"{size} bytes, the sidecar or catalog says {image.size}",
                                 where=image.location, hint="nothing was mounted")
    if actual != image.sha256:
        raise HashMismatchError(what="bundle image", where=image.location,
                                expected=image.sha256, actual=actual,
                                hint="the sidecar or catalog promises other bytes; nothing "
                                "was mounted")


def _install_locked(source: ResolvedSource, image: FsImage, store: Store, *,
                    transport: Transport, method: MountMethod, node: Node, progress: bool,
                    log: Callable[[str], None]) -> EntryRecord:
    sha, where = image.sha256, image.location
    work = store.work_dir(sha)
    entry = store.entry_path(sha)
    final = store.image_file(sha)
    mounted = False
    try:
        _fetch_checked(image, work / "image", transport=transport, progress=progress,
                       what=source.expect.name or "bundle image")
        with (work / "image").open("rb") as fh:
            check_superblock(fh.read(_SUPERBLOCK.size), file_size=image.size, where=where)
        (work / "image").rename(final)
        entry.mkdir()
        log(f"mounting {where} ({method})")
        mount_image(final, entry, method=method, node=node)
        mounted = True
        record = _check_mounted(source, image, entry, method=method, store=store)
        atomic_write_text(store.image_record_file(sha), canonical_json(record.to_dict()))
        return record
    except BaseException:
        if mounted:
            unmount(entry, node=node)
        if entry.is_dir():
            entry.rmdir()
        final.unlink(missing_ok=True)
        raise
    finally:
        rmtree(work)


def _check_mounted(source: ResolvedSource, image: FsImage, entry: Path, *,
                   method: MountMethod, store: Store) -> EntryRecord:
    """The mounted root against the promise (as an extracted manifest is checked)."""
    where = image.location
    try:
        names = sorted(p.name for p in entry.iterdir())
        extra = [n for n in names if n not in (APP, MANIFEST, SERVICE_DEF)]
        if extra:
            raise RefusedImageError(f"the image holds {', '.join(extra)} beside manifest.json, "
                                     "service-def.json and app/", where=where)
        if not (entry / APP).is_dir() or (entry / APP).is_symlink():
            raise RefusedImageError("the image has no app/ directory", where=where)
        manifest_path = entry / MANIFEST
        if manifest_path.is_symlink() or not manifest_path.is_file():
            raise RefusedImageError("the image has no manifest.json", where=where)
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RefusedImageError("manifest.json is too large", where=where)
        raw = manifest_path.read_bytes()
        manifest = check_manifest(raw, source.expect, where=where)
        named = manifest.data.get("record")
        if isinstance(named, dict):
            record_raw = (entry / RECORD_FILE).read_bytes()
            if hashlib.sha256(record_raw).hexdigest() != named.get("sha256"):
                raise RefusedImageError("the RECORD is not the one manifest.json names",
                                         where=where)
        service_def = (entry / SERVICE_DEF).is_file()
    except OSError as exc:
        raise RefusedImageError(f"cannot read the mounted image: {exc.strerror or exc}",
                                 where=where) from exc
    return EntryRecord(
        sha256=image.sha256, name=manifest.name, version=manifest.version,
        target=manifest.target, arch=manifest.arch, libc=manifest.libc,
        input_digest=manifest.input_digest, glibc_floor=manifest.glibc_floor,
        files=manifest.files, unpacked_bytes=manifest.unpacked_bytes, disk_bytes=image.size,
        service_def=service_def, installed_at=store.clock(), source=where,
        manifest_sha256=hashlib.sha256(raw).hexdigest(), image=image.kind,
        mounted_with=str(method))


def stored_image_damage(store: Store, sha: str) -> Difference | None:
    """What is wrong with a mounted entry's stored image before it is mounted again (a reboot
    took its mount): unreadable or gone, other bytes than its name (the sha256 of the bundle's
    image), or no sound squashfs; None when it may be mounted."""
    path = store.image_file(sha)
    name = path.relative_to(store.root).as_posix()
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            head = fh.read(_SUPERBLOCK.size)
            digest.update(head)
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        size = path.stat().st_size
    except FileNotFoundError:
        return Difference(name, "removed", "the image is gone")
    except OSError as exc:
        return Difference(name, "unreadable", f"cannot be read: {exc.strerror or exc}")
    if digest.hexdigest() != sha:
        return Difference(name, "content", f"sha256 {digest.hexdigest()}, not {sha}")
    try:
        check_superblock(head, file_size=size, where=str(path))
    except RefusedImageError as exc:
        return Difference(name, "content", exc.what)
    return None


def _remount(record: EntryRecord, store: Store, *, method: MountMethod, node: Node,
             log: Callable[[str], None]) -> EntryRecord:
    """An entry whose mount went away (a reboot) and whose image is sound: mounted again."""
    sha = record.sha256
    path = store.image_file(sha)
    log(f"mounting {path} again ({method}): its mount had gone")
    entry = store.entry_path(sha)
    entry.mkdir(exist_ok=True)
    mount_image(path, entry, method=method, node=node)
    updated = EntryRecord.from_dict({**record.to_dict(), "mounted_with": str(method)})
    atomic_write_text(store.image_record_file(sha), canonical_json(updated.to_dict()))
    return updated
