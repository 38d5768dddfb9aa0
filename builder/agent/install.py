"""``builder agent install``: source -> sha256 checked -> safe extraction -> whole store entry.

Under the entry's lock (so concurrent agents on one node download and extract once, the others wait
and reuse): leftovers of killed runs are removed, an existing whole entry is verified
(:mod:`builder.agent.verify`: every file's sha256 and mode against the bundle's RECORD) and reused,
or, when it differs in any way, installed again beside it and swapped in; or the archive is fetched
(its sha256 checked while it streams, nothing kept on a mismatch), extracted into a sibling work
directory with every check of :mod:`builder.agent.extract` (each file hashed as it is written and
compared with the RECORD), its sizes compared with the manifest, and the directory renamed into
place with its record written last. An ``oci://`` image takes the same path with
:func:`builder.agent.oci.pull_entry` (the manifest digest checked first,
``builder.oci.pull_bundle`` into the work directory) in place of the archive's fetch and
extraction.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from builder import net
from builder.agent.errors import RefusedBundleError
from builder.agent.extract import Limits, extract_bundle
from builder.agent.manifest_check import CheckedManifest, Counted, check_manifest, check_sizes
from builder.agent.mount import MountMethod, Node, choose_method, this_node
from builder.agent.objects import ObjectStore
from builder.agent.source import ResolvedSource, Transport
from builder.agent.store import EntryRecord, Store, disk_usage
from builder.errors import BuilderError, HashMismatchError, UsageError
from builder.fsutil import rmtree
from builder.layout import MANIFEST

if TYPE_CHECKING:
    from builder.agent.oci import OciOptions
    from builder.bundle.record import Difference

# Imported where they are used: a local archive's install needs neither the mounted-image path
# nor the OCI client nor verify's ELF reader (importing this path: 509 -> 345 ms CPU, median of
# 15 interleaved runs on the loaded 2-core machine; bench/README.md, issue 16.1).

# the real transport is builder.net's (one for the whole builder); the old name stays for callers
NetAgentTransport = net.NetTransport


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallResult:
    record: EntryRecord
    path: Path
    fresh: bool  # True when this call extracted the entry, False when it was already there
    # what was wrong with the entry found in the store, which this call replaced (empty: none)
    repaired: tuple[Difference, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallOptions:
    progress: bool = False
    limits: Limits = field(default_factory=Limits)
    oci: OciOptions | None = None  # for oci:// sources (None: HTTPS, no account, urllib)
    # an entry already in the store: read only the files changed since it was installed (ctime)
    quick_check: bool = True
    # a source listing a mountable image: mount it unless ``extract`` (--extract), with
    # ``mount`` (--mount kernel|fuse) or the node's best method; extract where none works
    extract: bool = False
    mount: MountMethod | None = None
    node: Node | None = None  # what the node offers (None: this node, probed when needed)


def install(source: ResolvedSource, store: Store, *, transport: Transport,
            options: InstallOptions, log: Callable[[str], None] = lambda _m: None
            ) -> InstallResult:
    method = mount_method(source, options, log)
    if method is not None and source.fs_image is not None:
        from builder.agent.image import install_mounted  # noqa: PLC0415 (lazy)
        done = install_mounted(source, source.fs_image, store, transport=transport,
                               method=method, node=options.node or this_node(),
                               progress=options.progress, log=log)
        return InstallResult(record=done.record, path=store.entry_path(done.record.sha256),
                             fresh=done.fresh,
                             repaired=() if done.repaired is None else (done.repaired,))
    sha = source.sha256
    with store.open_entry(sha, log=log) as found:
        fresh = found is None
        damage: list[Difference] = []
        if found is None:
            record = _install_locked(source, store, transport, options, log)
        else:
            record = found
            from builder.agent.verify import entry_differences  # noqa: PLC0415 (lazy)
            damage = entry_differences(record, store.entry_path(sha), quick=options.quick_check)
            if damage:
                log(f"the installed entry {sha[:16]} differs from its bundle in "
                    f"{len(damage)} way(s) (first: {damage[0]}); repairing it")
                record = _install_locked(source, store, transport, options, log, replace=True)
        store.installed(record)
    with contextlib.suppress(BuilderError, OSError):  # best effort: other entries' leftovers
        store.discard_all_leftovers()
    return InstallResult(record=record, path=store.entry_path(sha), fresh=fresh,
                         repaired=tuple(damage))


def mount_method(source: ResolvedSource, options: InstallOptions,
                 log: Callable[[str], None]) -> MountMethod | None:
    """How to mount the source's image; None: extract the archive (no image listed,
    ``--extract``, or a node that cannot mount)."""
    if options.extract:
        return None
    if source.fs_image is None:
        if options.mount is not None:
            raise UsageError(f"--mount {options.mount}: {source.location} lists no image",
                             hint="build it with `builder build --image squashfs`, or leave "
                             "--mount out to extract the archive")
        return None
    node = options.node or this_node()
    method = choose_method(node, options.mount)
    if method is None:
        log("this node can mount no squashfs image (no root for a loop mount, no squashfuse):"
            " extracting the archive")
    elif method is MountMethod.FUSE and not node.allow_other:
        log("the squashfuse mount is readable by this user only (no allow_other): add "
            "user_allow_other to /etc/fuse.conf for containers that run as other users")
    return method


def _install_locked(source: ResolvedSource, store: Store, transport: Transport,
                    options: InstallOptions, log: Callable[[str], None], *,
                    replace: bool = False) -> EntryRecord:
    """A whole new entry beside the store's, then renamed into place (``replace``: swapped
    with the damaged one in one exchange)."""
    where = source.location
    work = store.work_dir(source.sha256)
    try:
        if source.image is not None:
            from builder.agent.oci import OciOptions, pull_entry  # noqa: PLC0415 (lazy)
            manifest, counted = pull_entry(source.image, work / "entry", expect=source.expect,
                                           options=options.oci or OciOptions(),
                                           limits=options.limits,
                                           where=where, log=log)
        else:
            manifest, counted = _extract_archive(source, work, transport, options, log,
                                                 store=store)
        record = EntryRecord(
            sha256=source.sha256, name=manifest.name, version=manifest.version,
            target=manifest.target, arch=manifest.arch, libc=manifest.libc,
            input_digest=manifest.input_digest, glibc_floor=manifest.glibc_floor,
            files=manifest.files, unpacked_bytes=manifest.unpacked_bytes,
            disk_bytes=counted.disk_bytes or disk_usage(work / "entry"),
            new_bytes=counted.new_bytes or None,
            service_def=counted.service_def_bytes is not None,
            installed_at=store.clock(), source=where,
            oci_reference=None if source.image is None else str(source.image),
            manifest_sha256=hashlib.sha256((work / "entry" / MANIFEST).read_bytes()).hexdigest())
        if replace:
            store.republish(work / "entry", record)
        else:
            store.publish(work / "entry", record)
        return record
    except OSError as exc:
        raise BuilderError(f"cannot install: {exc.strerror or exc}",
                           where=str(exc.filename or store.root)) from exc
    finally:
        rmtree(work)


def _extract_archive(source: ResolvedSource, work: Path, transport: Transport,
                     options: InstallOptions, log: Callable[[str], None], *, store: Store
                     ) -> tuple[CheckedManifest, Counted]:
    where = source.location
    expect = source.expect

    def mismatch(actual: str) -> BuilderError:
        return HashMismatchError(what="bundle archive", where=where, expected=expect.sha256,
                                 actual=actual, hint=f"the {expect.vouched_by} promises other "
                                 "bytes; nothing was installed")

    with _open_sized(source, work, transport, options.progress,
                     options.limits.max_unpacked_bytes) as fh:
        log(f"extracting {where}")
        with _no_cyclic_gc():
            manifest, counted = extract_bundle(
                fh, work / "entry", sha256=source.sha256, size=expect.size,
                on_manifest=lambda raw: check_manifest(raw, expect, where=where),
                limits=options.limits, where=where, objects=ObjectStore(store.objects_dir),
                mismatch=mismatch)
    check_sizes(manifest, counted, where=where)
    return manifest, counted


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: an extraction allocates a few objects per member
    (names, the found and kinds maps), none in a reference cycle, and the collector's passes
    over them are pure cost (50-60 ms of jupyter-6's 22 k members). Restored on any exit."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _open_sized(source: ResolvedSource, work: Path, transport: Transport,
                progress: bool, max_bytes: int) -> Iterator[BinaryIO]:
    """The archive, open, its size checked; a download's sha256 checked too (a local file's is
    checked while it is extracted, in one read: :func:`extract_bundle` refuses the archive, and
    nothing is published, when it is not the one vouched for)."""
    expect = source.expect
    path = net.local_path(source.location)
    if path is None:
        path = work / "bundle.tar.zst"
        # the promised archive size when the sidecar or catalog states one, else the cap
        transport.fetch_to(source.location, path, expected_sha256=expect.sha256,
                           progress=progress, what=expect.name or "bundle",
                           max_bytes=expect.size if expect.size is not None else max_bytes)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BuilderError(f"cannot read: {exc.strerror or exc}", where=source.location) from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if expect.size is not None and size != expect.size:
            raise RefusedBundleError(f"the archive has {size} bytes, the {expect.vouched_by} "
                                     f"says {expect.size}", where=source.location)
        yield fh
