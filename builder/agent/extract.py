"""Streaming, refusing extraction of a bundle archive into a fresh work directory.

One sequential pass over the zstd tar stream; nothing is trusted:

- ``manifest.json`` must be the first member; it is checked (by the caller's function) before
  anything else is written, and its ``sizes`` bound the rest: a member whose header claims more
  bytes than are left is refused before a byte of it is written, and the bytes actually written
  are counted too.
- Only ``service-def.json`` (a regular file) and ``app/...`` may follow. Absolute names, ``..``,
  duplicates, hard links, devices, fifos, sparse files, set-uid/set-gid bits, members written
  through a symlink or a file, and symlinks leaving ``app/`` are refused, the last also after
  the fact by resolving every link (chains of links that are each harmless alone).
- Every byte read goes through a sha256 (in the reading thread of
  :class:`builder.agent.tarstream.ArchiveReader`, overlapped with the extraction); after the tar
  stream the rest of the file is read too, and the digest must be the expected one before the
  caller may publish anything (the file cannot change under us unnoticed). When a member is
  refused, the rest of the file is still hashed: an archive that is not the one vouched for is
  reported as that, whatever it holds.
- With a store's :class:`builder.agent.objects.ObjectStore`, a file of ``app/`` whose RECORD line
  (the RECORD comes before the files in a builder archive and is checked against manifest.json's
  hash as soon as it is written) names an object the store holds is hashed, not written: its
  bytes must have the RECORD's sha256, then the object is hard-linked; every other file is
  written and becomes an object. Sizes on disk are counted as files are written (no second walk).

Files are created with ``O_EXCL | O_NOFOLLOW`` below a directory this process made, modes
normalised to 0644/0755. On any refusal the caller removes the work directory.

Where the C helper is compiled (:mod:`builder.agent.writer`), a file that passed every check here
(up to ``_BATCHED_MAX`` bytes; not the RECORD, which is read back at once, nor the metadata) is
hashed here and handed to the batch writer, whose thread makes its system calls without the GIL
while this one checks the next members; what it wrote is counted, and its object link settled,
when its result comes back (the writer is drained before a link to an object still queued, and at
the end of the tar stream).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from builder.agent.errors import RefusedBundleError
from builder.agent.manifest_check import CheckedManifest, Counted
from builder.agent.objects import ObjectStore
from builder.agent.tarstream import ArchiveReader, Member, TarStream
from builder.agent.writer import NATIVE, BatchWriter
from builder.bundle.record import MAX_RECORD_BYTES, RECORD_FILE, Item, compare, parse
from builder.errors import BuilderError
from builder.layout import APP, MANIFEST, SERVICE_DEF
from builder.tarsafe import TAR_ERRORS, UnsafeMemberError, check_member_name, member_path

_DIRS = ("dir", "implicit-dir")
_LAYER_READ = 64 << 10
# files up to this size go to the batch writer (the member is held whole until written); larger
# ones are written as they arrive, by this thread (one file of jupyter-6's 19 k)
_BATCHED_MAX = 16 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_unpacked_bytes: int = 32 << 30  # hard cap, whatever a manifest or catalog declares
    max_members: int = 1_000_000
    max_metadata_bytes: int = 4 << 20  # manifest.json, service-def.json (each)


@dataclass(slots=True)
class _State:
    dest: Path
    dest_str: str
    where: str
    limits: Limits
    kinds: dict[str, str]  # normalised member name -> "dir" | "implicit-dir" | "file" | "link"
    links: list[str]
    members: int = 0
    app_files: int = 0
    app_bytes: int = 0
    service_def_bytes: int | None = None
    budget_bytes: int = 0
    budget_files: int = 0
    # what was written, as the RECORD describes it (hashed while written)
    found: dict[str, Item] = field(default_factory=dict)
    objects: ObjectStore | None = None
    # the RECORD's lines once its bytes were written with the sha256 manifest.json names
    expected: dict[str, Item] | None = None
    record_sha256: str | None = None
    disk_bytes: int = 0  # blocks of every inode the entry holds (each object once)
    new_bytes: int = 0  # blocks this extraction wrote
    inodes: set[int] = field(default_factory=set)  # of the files written or linked (counted once)
    # the batch writer (builder.agent.writer) where the C helper was compiled, else None
    writer: BatchWriter | None = None
    batched: set[str] = field(default_factory=set)  # object names queued there, not yet settled


def _mismatch(where: str, expected: str) -> Callable[[str], BuilderError]:
    def error(actual: str) -> BuilderError:
        return RefusedBundleError(f"the archive changed while it was read (sha256 {actual}, "
                                  f"expected {expected})", where=where,
                                  hint="something rewrote the file; try again")
    return error


def extract_bundle(
    raw: BinaryIO,
    dest: Path,
    *,
    sha256: str,
    size: int | None,
    on_manifest: Callable[[bytes], CheckedManifest],
    limits: Limits,
    where: str,
    objects: ObjectStore | None = None,
    mismatch: Callable[[str], BuilderError] | None = None,
) -> tuple[CheckedManifest, Counted]:
    """Extract the archive read from ``raw`` into ``dest`` (created here, must not exist).

    ``objects``: the store's objects (files linked from there, new ones added). ``mismatch``:
    the error for an archive whose sha256 is not ``sha256`` (given the actual digest)."""
    # 0755 whatever the agent's umask: containers' users must enter the entry
    state = _State(dest=dest, dest_str=str(dest), where=where, limits=limits, kinds={}, links=[],
                   objects=objects, disk_bytes=_new_dir(str(dest)))
    state.new_bytes = state.disk_bytes
    error = mismatch or _mismatch(where, sha256)
    archive = ArchiveReader(raw)
    if NATIVE is not None:
        state.writer = BatchWriter(NATIVE, lambda key, disk_bytes, inode, link_error:
                                   _written(state, key, disk_bytes, inode, link_error))
    try:
        tar = TarStream(archive.chunks())
        manifest = _first_member(tar, state, on_manifest)
        while (member := tar.next()) is not None:
            _extract_member(tar, member, state)
        if state.writer is not None:
            state.writer.drain()
        digest, count = archive.finish()
    except BuilderError as exc:
        _not_vouched_first(archive, sha256, error, exc)
        raise
    except TAR_ERRORS as exc:
        if isinstance(exc, OSError) and exc.filename is not None:  # writing the entry (no space
            raise  # left, ...): not the archive's fault; install says "cannot install: <why>"
        _not_vouched_first(archive, sha256, error, exc)
        raise RefusedBundleError(f"truncated or corrupt archive: {exc}", where=where) from exc
    finally:
        if state.writer is not None:
            state.writer.close()  # nor does the writing thread
        archive.close()  # the reading thread never outlives the extraction
    if digest != sha256 or (size is not None and count != size):
        raise error(digest)
    if state.kinds.get(APP) not in _DIRS:
        raise RefusedBundleError("the archive has no app/ directory", where=where)
    _check_links_resolve_inside(state)
    check_record(manifest, state.dest, state.found, where=where, recorded=state.expected)
    return manifest, Counted(app_files=state.app_files, app_bytes=state.app_bytes,
                             service_def_bytes=state.service_def_bytes,
                             disk_bytes=state.disk_bytes, new_bytes=state.new_bytes)


def _not_vouched_first(archive: ArchiveReader, sha256: str,
                       error: Callable[[str], BuilderError], exc: BaseException) -> None:
    """After a refusal: an archive that is not the one vouched for is reported as that (the
    rest of the file hashed), whatever else is wrong with it."""
    archive.close()
    actual = archive.rest_digest()
    if actual != sha256:
        raise error(actual) from exc


@dataclass(slots=True)
class LayerExtraction:
    """Extracts an OCI layer (the bundle's ``app/`` re-rooted at ``/``) into ``app/`` with the
    same per-member checks as an archive, during the extraction: names, types, set-id bits,
    parents, symlinks, and the byte and file budget of the already checked ``manifest``. A
    hostile member is refused before it is written, and nothing after it is read. Called by
    :func:`builder.oci.pull_bundle` with the layer's uncompressed stream."""

    manifest: CheckedManifest
    limits: Limits
    where: str
    state: _State | None = None

    def __call__(self, stream: IO[bytes], app: Path) -> None:
        dest = app.parent
        state = _State(dest=dest, dest_str=str(dest), where=self.where, limits=self.limits,
                       kinds={APP: "dir"}, links=[], budget_bytes=self.manifest.unpacked_bytes,
                       budget_files=self.manifest.files)
        state.found[APP] = Item("d", 0o755)
        self.state = state
        # read in small pieces: nothing far past a hostile member is read
        tar = TarStream(iter(lambda: stream.read(_LAYER_READ), b""))
        while (member := tar.next()) is not None:
            name = _layer_member_name(member.name, state)
            if name is not None:
                member.name = name
                _extract_member(tar, member, state)
        _check_links_resolve_inside(state)

    def counted(self, service_def_bytes: int | None) -> Counted:
        if self.state is None:
            raise RefusedBundleError("the layer was not extracted", where=self.where)
        return Counted(app_files=self.state.app_files, app_bytes=self.state.app_bytes,
                       service_def_bytes=service_def_bytes)


def _layer_member_name(name: str, state: _State) -> str | None:
    """``x/y`` -> ``app/x/y``; ``.`` (the layer's root, app/ itself) -> None."""
    try:
        path = check_member_name(name, where=state.where)
    except UnsafeMemberError as exc:
        raise _refuse(state, exc.what) from exc
    if any(part.startswith(".wh.") for part in path.parts):
        raise _refuse(state, f"whiteout entry {name!r}: not a layer builder made")
    rel = path.as_posix()
    return None if rel in ("", ".") else f"{APP}/{rel}"


def _refuse(state: _State, what: str) -> RefusedBundleError:
    return RefusedBundleError(what, where=state.where)


def _first_member(tar: TarStream, state: _State,
                  on_manifest: Callable[[bytes], CheckedManifest]) -> CheckedManifest:
    member = tar.next()
    if member is None:
        raise _refuse(state, "the archive is empty")
    if member.name != MANIFEST:
        raise _refuse(state, f"the first member is {member.name!r}, not manifest.json")
    if not member.isreg():
        raise _refuse(state, "manifest.json is not a regular file")
    if member.size > state.limits.max_metadata_bytes:
        raise _refuse(state, f"manifest.json claims {member.size} bytes, more than the "
                             f"{state.limits.max_metadata_bytes} allowed")
    raw = tar.read_all()
    manifest = on_manifest(raw)
    if manifest.unpacked_bytes > state.limits.max_unpacked_bytes:
        raise _refuse(state, f"manifest.json declares {manifest.unpacked_bytes} bytes unpacked, "
                             f"above the limit of {state.limits.max_unpacked_bytes}")
    # app/ alone must fit what the manifest declares (service-def.json may or may not be
    # counted there; it has its own small limit)
    state.budget_bytes = manifest.unpacked_bytes
    state.budget_files = manifest.files
    free = _free_bytes(state.dest)
    if free is not None and manifest.unpacked_bytes > free:
        raise BuilderError(f"not enough disk space: the bundle needs {manifest.unpacked_bytes} "
                           f"bytes, {free} are free", where=str(state.dest),
                           hint="free space, e.g. with `builder agent gc`")
    _write_file(state, MANIFEST, raw, mode=0o644)
    state.kinds[MANIFEST] = "file"
    named = manifest.data.get("record")
    if isinstance(named, dict) and isinstance(named.get("sha256"), str):
        state.record_sha256 = named["sha256"]
    return manifest


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _name_of(member: Member, state: _State) -> str:
    """The member's name, normalised (``./a//b`` is ``a/b``); unsafe names refused."""
    name = member.name
    try:
        rel = member_path(name, where=state.where)
    except UnsafeMemberError as exc:
        raise _refuse(state, exc.what) from exc
    if "\x00" in name or rel in ("", "."):
        raise _refuse(state, f"member with an invalid name: {name!r}")
    return rel


def _extract_member(tar: TarStream, member: Member, state: _State) -> None:
    state.members += 1
    if state.members > state.limits.max_members:
        raise _refuse(state, f"more than {state.limits.max_members} members")
    rel = _name_of(member, state)
    _check_kind(member, rel, state)
    _check_parents(rel, state)
    seen = state.kinds.get(rel)
    if seen is not None and not (seen == "implicit-dir" and member.isdir()):
        raise _refuse(state, f"duplicate member: {member.name!r}")
    if member.isdir():
        if seen is None:
            _mkdir(state, rel)
        state.kinds[rel] = "dir"
        state.found[rel] = Item("d", 0o755)
    elif member.issym():
        _symlink(state, rel, member.linkname)
    else:
        _regular(tar, member, rel, state)


def _check_kind(member: Member, rel: str, state: _State) -> None:
    """Where a member may be and what it may be, from its header alone."""
    name = member.name
    if rel == SERVICE_DEF:
        if not member.isreg():
            raise _refuse(state, "service-def.json is not a regular file")
    elif rel.split("/", 1)[0] != APP:
        raise _refuse(state, f"unexpected member outside app/: {name!r} (a bundle holds only "
                             "manifest.json, service-def.json and app/)")
    if member.islnk():
        raise _refuse(state, f"hard link refused: {name!r} -> {member.linkname!r}")
    if member.issparse():
        raise _refuse(state, f"sparse file refused: {name!r}")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _refuse(state, f"device or fifo refused: {name!r}")
    if not (member.isreg() or member.isdir() or member.issym()):
        raise _refuse(state, f"member of unsupported type {member.type!r}: {name!r}")
    if member.mode & (stat.S_ISUID | stat.S_ISGID):
        raise _refuse(state, f"set-uid/set-gid bit refused: {name!r}")


def _check_parents(rel: str, state: _State) -> None:
    """Every ancestor must be a directory this extraction made (created here if missing)."""
    parent = posixpath.dirname(rel)
    if not parent or state.kinds.get(parent) in _DIRS:  # its own ancestors were checked
        return
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        ancestor = "/".join(parts[:depth])
        kind = state.kinds.get(ancestor)
        if kind is None:
            if parts[0] != APP:
                raise _refuse(state, f"member below {ancestor}: {rel!r}")
            _mkdir(state, ancestor)
            state.kinds[ancestor] = "implicit-dir"
            state.found[ancestor] = Item("d", 0o755)
        elif kind == "link":
            raise _refuse(state, f"member written through the symlink {ancestor}: {rel!r}")
        elif kind == "file":
            raise _refuse(state, f"member below the file {ancestor}: {rel!r}")


def _new_dir(path: str) -> int:
    """Make the directory ``path`` 0755 whatever the umask; returns its size on disk."""
    os.mkdir(path, 0o755)  # noqa: PTH102 (str paths: fast)
    st = os.lstat(path)
    if stat.S_IMODE(st.st_mode) != 0o755:  # a umask took bits away
        os.chmod(path, 0o755)  # noqa: PTH101, S103 (str paths: fast)
    return st.st_blocks * 512


def _mkdir(state: _State, rel: str) -> None:
    blocks = _new_dir(f"{state.dest_str}/{rel}")
    state.disk_bytes += blocks
    state.new_bytes += blocks


def _blocks(path: str | Path) -> int:
    return os.lstat(path).st_blocks * 512


def _symlink(state: _State, rel: str, linkname: str) -> None:
    if not rel.startswith(APP + "/"):
        raise _refuse(state, f"symlink outside app/: {rel!r}")
    if not linkname or "\x00" in linkname:
        raise _refuse(state, f"symlink with an empty target: {rel!r}")
    if linkname.startswith("/"):
        raise _refuse(state, f"symlink to an absolute path: {rel!r} -> {linkname!r}")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), linkname))
    if not (target == APP or target.startswith(APP + "/")):
        raise _refuse(state, f"symlink leaving app/: {rel!r} -> {linkname!r}")
    path = f"{state.dest_str}/{rel}"
    os.symlink(linkname, path)  # noqa: PTH211 (str paths: fast)
    blocks = _blocks(path)
    state.disk_bytes += blocks
    state.new_bytes += blocks
    state.kinds[rel] = "link"
    state.found[rel] = Item("l", digest=linkname)
    state.links.append(rel)


def _regular(tar: TarStream, member: Member, rel: str, state: _State) -> None:
    is_service_def = rel == SERVICE_DEF
    if is_service_def:
        if member.size > state.limits.max_metadata_bytes:
            raise _refuse(state, f"service-def.json claims {member.size} bytes, more than the "
                                 f"{state.limits.max_metadata_bytes} allowed")
    else:
        left = state.budget_bytes - state.app_bytes
        if member.size > left:
            raise _refuse(state, f"member {rel!r} claims {member.size} bytes, more than "
                                 f"the {left} left of the {state.budget_bytes} bytes "
                                 "manifest.json declares")
        if state.app_files + 1 > state.budget_files:
            raise _refuse(state, f"more files than the {state.budget_files} manifest.json "
                                 f"declares (at {rel!r})")
    mode = 0o755 if member.mode & 0o111 else 0o644
    linked = None if is_service_def else _link_object(tar, member, rel, mode, state)
    if linked is not None:
        written, digest = linked
    elif state.writer is not None and member.size <= _BATCHED_MAX and not is_service_def \
            and rel != RECORD_FILE:  # the RECORD is read back at once: written here
        written, digest = _queue_file(state, state.writer, rel, tuple(tar.data()), mode=mode)
    else:
        written, digest = _write_file(state, rel, tar.data(), mode=mode, limit=member.size,
                                      adopt=not is_service_def)
    state.kinds[rel] = "file"
    state.found[rel] = Item("f", mode, written, digest)
    if rel == RECORD_FILE:
        _read_record_early(state, digest, written)
    if is_service_def:
        state.service_def_bytes = written
    else:
        state.app_files += 1
        state.app_bytes += written


def _link_object(tar: TarStream, member: Member, rel: str, mode: int, state: _State
                 ) -> tuple[int, str] | None:
    """When the RECORD names this file and the store holds its object: the member's bytes are
    hashed (not written) and must be the RECORD's, then the object is linked. None otherwise
    (nothing was read)."""
    if state.objects is None or state.expected is None:
        return None
    want = state.expected.get(rel)
    if want is None or want.kind != "f" or (want.mode, want.size) != (mode, member.size):
        return None
    if state.writer is not None and f"{want.digest}.{mode:o}" in state.batched:
        state.writer.drain()  # that object is still being written: link it once it is there
    st = state.objects.link_into(want.digest, mode, want.size, f"{state.dest_str}/{rel}")
    if st is None:
        return None
    digest = hashlib.sha256()
    read = 0
    for chunk in tar.data():
        read += len(chunk)
        digest.update(chunk)
    if digest.hexdigest() != want.digest:  # the RECORD lies about this member
        raise _refuse(state, f"{rel}: content differs from the RECORD (sha256 "
                             f"{digest.hexdigest()}, the RECORD says {want.digest})")
    if st.st_ino not in state.inodes:  # linked twice in one entry: counted once
        state.inodes.add(st.st_ino)
        state.disk_bytes += st.st_blocks * 512
    return read, digest.hexdigest()


def _read_record_early(state: _State, digest: str, size: int) -> None:
    """The RECORD, written with the sha256 manifest.json names: its lines let later files be
    linked from the store's objects (:func:`check_record` checks it again at the end)."""
    if state.objects is None or state.record_sha256 is None or digest != state.record_sha256 \
            or size > MAX_RECORD_BYTES:
        return
    path = state.dest / RECORD_FILE
    state.expected = parse(path.read_bytes(), where=state.where)


def _write_file(state: _State, rel: str, data: bytes | Iterable[memoryview], *, mode: int,
                limit: int | None = None, adopt: bool = False) -> tuple[int, str]:
    """Write one file; returns its size and sha256 (hashed on the way: no second read).
    ``adopt``: make it the store's object for its content (when the store has objects)."""
    path = f"{state.dest_str}/{rel}"  # rel is normalised and checked: no "..", not absolute
    # created with its final mode (a umask that took bits away is undone below, from the
    # fstat the sizes need anyway: no chmod per file)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    written = 0
    digest = hashlib.sha256()
    try:
        for chunk in (data,) if isinstance(data, bytes) else data:
            written += len(chunk)
            if limit is not None and written > limit:  # pragma: no cover (the reader bounds it)
                raise _refuse(state, f"member {rel!r} is longer than its header says")
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
        hexdigest = digest.hexdigest()
        if adopt and state.objects is not None:
            state.objects.adopt(fd, path, hexdigest, mode)
    finally:
        os.close(fd)
    blocks = st.st_blocks * 512
    state.inodes.add(st.st_ino)
    state.disk_bytes += blocks
    state.new_bytes += blocks
    return written, hexdigest


def _queue_file(state: _State, writer: BatchWriter, rel: str, pieces: tuple[memoryview, ...],
                *, mode: int) -> tuple[int, str]:
    """Hash the member's bytes (``pieces``: views of the chunks read, no copy) and hand the file
    to the batch writer (linked as the store's object for its content, when the store has
    objects); its size and sha256. What the disk holds is counted when the writer's result
    comes back (:func:`_written`)."""
    digest = hashlib.sha256()
    size = 0
    for piece in pieces:
        size += len(piece)
        digest.update(piece)
    hexdigest = digest.hexdigest()
    obj = None
    if state.objects is not None:
        obj = state.objects.claim(hexdigest, mode)
        state.batched.add(f"{hexdigest}.{mode:o}")
    path = f"{state.dest_str}/{rel}"  # rel is normalised and checked: no "..", not absolute
    writer.add(path, mode, pieces, obj, (path, hexdigest, mode, size))
    return size, hexdigest


def _written(state: _State, key: tuple[str, str, int, int], disk_bytes: int, inode: int,
             link_error: int) -> None:
    """A file the batch writer wrote: its object link settled, its blocks counted."""
    path, hexdigest, mode, size = key
    if state.objects is not None:
        state.batched.discard(f"{hexdigest}.{mode:o}")
        if link_error:
            state.objects.settle(path, hexdigest, mode, size, link_error)
    state.inodes.add(inode)
    state.disk_bytes += disk_bytes
    state.new_bytes += disk_bytes


def _check_links_resolve_inside(state: _State) -> None:
    """Each link was harmless alone; resolved together they must still stay inside app/."""
    app = os.path.realpath(state.dest / APP)
    for rel in state.links:
        link = state.dest / rel
        resolved = os.path.realpath(link)
        if resolved != app and not resolved.startswith(app + os.sep):
            raise _refuse(state, f"symlink resolving outside app/ through other links: "
                                 f"{rel!r} -> {str(link.readlink())!r}")


def check_record(manifest: CheckedManifest, dest: Path, found: dict[str, Item], *,
                 where: str, recorded: dict[str, Item] | None = None) -> None:
    """The bundle's RECORD (named in manifest.json with its sha256) must describe exactly what
    was written: every path, type, mode, size and sha256. A bundle without one (built before
    RECORDs) passes; ``found`` is what the extraction wrote, hashed on the way; ``recorded``: the
    RECORD already parsed (from the bytes written with the sha256 checked here)."""
    named = manifest.data.get("record")
    if named is None:
        return
    item = found.get(RECORD_FILE)
    if item is None or item.kind != "f":
        raise RefusedBundleError(f"manifest.json names {RECORD_FILE}, the bundle has none",
                                 where=where)
    if item.size > MAX_RECORD_BYTES or item.digest != named["sha256"]:
        raise RefusedBundleError(f"{RECORD_FILE} is not the one manifest.json names (sha256 "
                                 f"{item.digest}, expected {named['sha256']})", where=where)
    if recorded is None:
        recorded = parse((dest / RECORD_FILE).read_bytes(), where=where)
    differences = compare(recorded, {p: i for p, i in found.items() if p != RECORD_FILE})
    if differences:
        shown = "\n  ".join(str(d) for d in differences[:10])
        more = f"\n  ... and {len(differences) - 10} more" if len(differences) > 10 else ""
        raise RefusedBundleError(f"the bundle's RECORD does not describe its contents "
                                 f"({len(differences)} difference(s)):\n  {shown}{more}",
                                 where=where)
