"""The node's bundle store: whole, verified entries named by the sha256 checked first.

The key of an entry is the sha256 that vouched for its bytes before anything was opened: the
archive's sha256 for ``.tar.zst`` installs, the image manifest's digest (its 64 hex digits) for
``oci://`` installs. One bundle installed both ways is two entries.

```
<store>/entries/<sha256>/     manifest.json, service-def.json (if any), app/, and .complete
                              (the entry's record, written last, before the rename into place)
<store>/tmp/                  <sha256>.<pid>.<token>/ install work, evict.<sha256>.<token>/ trash
<store>/locks/<sha256>.lock   held to install, pin, lease or evict one entry; names.lock
<store>/pins/<sha256>         pinned: never evicted
<store>/leases/<sha256>.<pid> in use by a process: never evicted while that process lives
<store>/uses/<sha256>         last use (seconds since the epoch), rewritten atomically
<store>/names/<name>.json     the entry a name means: the last one installed under that name
<store>/images/<sha256>.squashfs  a mounted entry's image (``builder.agent.image``); the entry
                              is its mount point, its record ``images/<sha256>.complete``
<store>/objects/<ab>/<sha256>.<mode>  every file of the entries' app/, once: entries hold hard
                              links (:mod:`builder.agent.objects`)
```

Every file others read is written atomically; an entry appears by one ``rename`` of a complete
directory and disappears by one ``rename`` into ``tmp/``, so readers see whole entries or none.
Leftovers of killed processes (work dirs, trash) are removed by the next run that can take the
entry's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from builder.agent.errors import StoreError
from builder.agent.mount import unmount
from builder.catalog.model import version_key
from builder.errors import BuilderError, UsageError
from builder.fsutil import atomic_write_text, canonical_json, rmtree

RECORD = ".complete"
RECORD_FORMAT_VERSION = 1
_SHA = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class ProcessTable(Protocol):
    """Which processes live (a port, so tests can fake PIDs)."""

    def start_time(self, pid: int) -> int | None:
        """An opaque start stamp of a running process (guards against PID reuse); None if gone."""


@dataclass(frozen=True, slots=True)
class ProcTable:
    """The real process table, from ``/proc/<pid>/stat`` (field 22: start time in ticks)."""

    proc: Path = Path("/proc")

    def start_time(self, pid: int) -> int | None:
        try:
            text = (self.proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return None
        except OSError:  # no /proc: fall back to signal 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                return 0
            return 0
        fields = text.rsplit(")", 1)[-1].split()
        return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRecord:
    """What the store knows about one entry (``.complete``)."""

    sha256: str
    name: str
    version: str
    target: str
    arch: str
    libc: str
    input_digest: str
    glibc_floor: str | None
    files: int
    unpacked_bytes: int
    disk_bytes: int
    service_def: bool
    installed_at: float
    source: str
    # ``REGISTRY/REPO@sha256:<sha256>`` for an entry installed from an OCI image, else None
    oci_reference: str | None = None
    # sha256 of manifest.json as installed (it names the RECORD's hash; it cannot name its own)
    manifest_sha256: str | None = None
    # a mounted entry (builder.agent.image): the image's kind ("squashfs") and how it is
    # mounted ("kernel" | "fuse"); None for an extracted entry
    image: str | None = None
    mounted_with: str | None = None
    # bytes this install added to the disk (the rest was linked from the store's objects)
    new_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"format_version": RECORD_FORMAT_VERSION, "sha256": self.sha256,
                "name": self.name, "version": self.version, "target": self.target,
                "arch": self.arch, "libc": self.libc, "input_digest": self.input_digest,
                "glibc_floor": self.glibc_floor, "files": self.files,
                "unpacked_bytes": self.unpacked_bytes, "disk_bytes": self.disk_bytes,
                "service_def": self.service_def, "installed_at": self.installed_at,
                "source": self.source}
        if self.oci_reference is not None:  # archive records stay as they were
            data["oci_reference"] = self.oci_reference
        if self.manifest_sha256 is not None:
            data["manifest_sha256"] = self.manifest_sha256
        if self.image is not None:
            data["image"] = self.image
            data["mounted_with"] = self.mounted_with
        if self.new_bytes is not None:
            data["new_bytes"] = self.new_bytes
        return data

    @classmethod
    def from_dict(cls, data: Any) -> EntryRecord:
        if not isinstance(data, dict) or data.get("format_version") != RECORD_FORMAT_VERSION:
            raise ValueError("not an entry record")
        known = {f.name for f in dataclasses.fields(cls)}
        # keys added later within format 1 are optional; unknown ones (a newer agent's) ignored
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryState:
    """An entry with its use: for ``list`` and ``gc``."""

    record: EntryRecord
    path: Path
    last_use: float
    pinned: bool
    leases: tuple[int, ...]  # live PIDs holding a lease


def check_sha256(value: str, *, what: str = "sha256") -> str:
    if not _SHA.match(value):
        raise UsageError(f"{what} must be 64 lowercase hex digits, not {value!r}")
    return value


def disk_usage(root: Path) -> int:
    """Bytes the tree takes on disk (allocated blocks, links and directories included)."""
    total = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            total += (Path(directory) / name).lstat().st_blocks * 512
    return total + root.lstat().st_blocks * 512


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    root: Path
    clock: Callable[[], float] = time.time
    processes: ProcessTable = field(default_factory=ProcTable)
    lock_timeout: float = 3600.0

    # -- layout --------------------------------------------------------------------------------

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    def entry_path(self, sha256: str) -> Path:
        return self.entries_dir / check_sha256(sha256)

    # -- hooks for mounted entries (builder.agent.image) -----------------------------------------

    def image_file(self, sha256: str) -> Path:
        """The image a mounted entry is mounted from."""
        return self.root / "images" / f"{check_sha256(sha256)}.squashfs"

    def image_record_file(self, sha256: str) -> Path:
        """A mounted entry's record (its entry directory is the read-only image)."""
        return self.root / "images" / f"{check_sha256(sha256)}{RECORD}"

    def _drop_image(self, sha256: str) -> None:
        """Unmount a mounted entry (lazily: a process still reading keeps its view) and remove
        its record and image (lock held); nothing for an extracted entry."""
        unmount(self.entry_path(sha256))
        self.image_record_file(sha256).unlink(missing_ok=True)
        rmtree(self.image_file(sha256))  # a file, or whatever took its name

    def ensure(self) -> None:
        for sub in ("entries", "tmp", "locks", "pins", "leases", "uses", "names", "images",
                    "objects"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- locks ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, key: str, *, timeout: float | None = None) -> Iterator[None]:
        """Hold ``locks/<key>.lock`` (a sha256, or "names"); waits up to the store's timeout."""
        wait = self.lock_timeout if timeout is None else timeout
        lock = FileLock(str(self.root / "locks" / f"{key}.lock"), timeout=wait)
        try:
            lock.acquire()
        except Timeout as exc:
            raise StoreError(f"another agent holds the lock {key} (waited {wait:.0f} s)",
                             where=str(self.root),
                             hint="retry later; a killed agent's lock is released by the OS"
                             ) from exc
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def open_entry(self, sha256: str, *, log: Callable[[str], None] = lambda _m: None
                   ) -> Iterator[EntryRecord | None]:
        """What every install of an entry starts with: the store made, the entry's lock held
        for the block, the leftovers of an interrupted install removed (said in ``log``); yields
        the entry's record, None when it is not installed. The block ends with
        :meth:`installed` of the record it found, made or repaired."""
        self.ensure()
        with self.lock(sha256):
            if self.discard_leftovers(sha256):
                log(f"removed leftovers of an interrupted install of {sha256[:16]}")
            yield self.record(sha256)

    def installed(self, record: EntryRecord) -> None:
        """An install's end (the entry's lock held): its last use now, its name pointing at it."""
        self.touch(record.sha256)
        self.set_name(record)

    def try_lock(self, key: str) -> contextlib.AbstractContextManager[None] | None:
        """The lock if it is free right now, else None."""
        lock = FileLock(str(self.root / "locks" / f"{key}.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return None

        @contextlib.contextmanager
        def held() -> Iterator[None]:
            try:
                yield
            finally:
                lock.release()

        return held()

    # -- entries -------------------------------------------------------------------------------

    def record(self, sha256: str) -> EntryRecord | None:
        """The record of a whole entry; None when there is none (or it is not whole)."""
        try:
            try:
                text = (self.entry_path(sha256) / RECORD).read_text(encoding="utf-8")
            except FileNotFoundError:  # a mounted entry keeps its record beside its image
                text = self.image_record_file(sha256).read_text(encoding="utf-8")
            record = EntryRecord.from_dict(json.loads(text))
        except (OSError, ValueError, TypeError):
            return None
        return record if record.sha256 == sha256 else None

    def records(self) -> tuple[EntryRecord, ...]:
        if not self.entries_dir.is_dir():
            return ()
        found = (self.record(p.name) for p in sorted(self.entries_dir.iterdir())
                 if _SHA.match(p.name))
        return tuple(r for r in found if r is not None)

    def work_dir(self, sha256: str) -> Path:
        """A fresh ``tmp/<sha256>.<pid>.<token>/`` (call with the entry's lock held)."""
        path = self.tmp_dir / f"{check_sha256(sha256)}.{os.getpid()}.{secrets.token_hex(4)}"
        path.mkdir(mode=0o700)
        return path

    def publish(self, work_entry: Path, record: EntryRecord) -> Path:
        """Write the record last, then rename the whole directory into place (lock held)."""
        atomic_write_text(work_entry / RECORD, canonical_json(record.to_dict()))
        final = self.entry_path(record.sha256)
        work_entry.rename(final)
        _fsync_dir(self.entries_dir)
        return final

    def republish(self, work_entry: Path, record: EntryRecord) -> None:
        """Put a freshly installed ``work_entry`` in place of the existing (damaged) entry (lock
        held): the record written last, then one ``renameat2(RENAME_EXCHANGE)`` swaps the two
        directories, so readers see the old entry or the new one, never a mix or a gap (where
        the kernel or the file system cannot exchange: the old entry is renamed away first, a
        short gap but never a half entry). The old tree ends up at ``work_entry``'s path, for
        the caller to remove."""
        atomic_write_text(work_entry / RECORD, canonical_json(record.to_dict()))
        final = self.entry_path(record.sha256)
        if not _exchange(work_entry, final):
            aside = work_entry.with_name(work_entry.name + ".old")
            final.rename(aside)
            work_entry.rename(final)
            aside.rename(work_entry)
        _fsync_dir(self.entries_dir)

    def discard_leftovers(self, sha256: str) -> int:
        """Remove what killed runs left for this entry (its lock held); returns how many."""
        count = 0
        for path in self._leftovers_of(sha256):
            rmtree(path)
            count += 1
        entry = self.entry_path(sha256)
        if self.record(sha256) is None and (entry.exists() or self.image_file(sha256).exists()):
            self._drop_image(sha256)  # a mount (or image) whose record was never written
            if entry.exists():  # not whole: never published whole
                self._trash(entry, sha256)
            count += 1
        return count

    def discard_all_leftovers(self) -> int:
        """Leftovers of every entry whose lock is free (the rest belong to live agents)."""
        if not self.tmp_dir.is_dir():
            return 0
        shas = sorted({sha for p in self.tmp_dir.iterdir() if (sha := _sha_of_tmp(p.name))})
        count = 0
        for sha in shas:
            held = self.try_lock(sha)
            if held is not None:
                with held:
                    count += self.discard_leftovers(sha)
        return count

    def _leftovers_of(self, sha256: str) -> list[Path]:
        if not self.tmp_dir.is_dir():
            return []
        return sorted(p for p in self.tmp_dir.iterdir() if _sha_of_tmp(p.name) == sha256)

    def _trash(self, entry: Path, sha256: str) -> None:
        trash = self.tmp_dir / f"evict.{sha256}.{secrets.token_hex(4)}"
        entry.rename(trash)
        rmtree(trash)

    def evict(self, sha256: str) -> None:
        """Remove an entry (its lock held): one rename out of entries/, then delete."""
        record = self.record(sha256)
        self._drop_image(sha256)
        self._trash(self.entry_path(sha256), sha256)
        (self.root / "uses" / sha256).unlink(missing_ok=True)
        for lease in self._lease_files(sha256):
            lease.unlink(missing_ok=True)
        if record is not None:
            self._repoint_name(record.name)

    # -- use, pins, leases ---------------------------------------------------------------------

    def touch(self, sha256: str) -> None:
        atomic_write_text(self.root / "uses" / check_sha256(sha256), f"{self.clock():.6f}\n")

    def last_use(self, record: EntryRecord) -> float:
        try:
            return float((self.root / "uses" / record.sha256).read_text(encoding="ascii"))
        except (OSError, ValueError):
            return record.installed_at

    def pin(self, sha256: str) -> None:
        with self.lock(sha256):
            if self.record(sha256) is None:
                raise StoreError(f"no entry {sha256} in the store", where=str(self.root))
            atomic_write_text(self.root / "pins" / sha256, "pinned\n")

    def unpin(self, sha256: str) -> bool:
        path = self.root / "pins" / check_sha256(sha256)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def is_pinned(self, sha256: str) -> bool:
        return (self.root / "pins" / sha256).exists()

    def add_lease(self, sha256: str, pid: int) -> Path:
        """Mark the entry in use by ``pid`` until that process ends."""
        start = self.processes.start_time(pid)
        if start is None:
            raise StoreError(f"no running process {pid}", where=str(self.root),
                             hint="a lease needs the PID of a live process")
        with self.lock(sha256):
            if self.record(sha256) is None:
                raise StoreError(f"no entry {sha256} in the store", where=str(self.root))
            path = self.root / "leases" / f"{sha256}.{pid}"
            atomic_write_text(path, canonical_json({"pid": pid, "start_time": start}))
        return path

    def release_lease(self, sha256: str, pid: int) -> bool:
        path = self.root / "leases" / f"{check_sha256(sha256)}.{pid}"
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def _lease_files(self, sha256: str) -> list[Path]:
        leases = self.root / "leases"
        return sorted(leases.glob(f"{sha256}.*")) if leases.is_dir() else []

    def live_leases(self, sha256: str) -> tuple[int, ...]:
        """PIDs of live lease holders; leases of ended processes are removed on the way."""
        live = []
        for path in self._lease_files(sha256):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                pid, start = int(data["pid"]), data["start_time"]
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            now = self.processes.start_time(pid)
            if now is not None and (start in (None, 0) or now in (0, start)):
                live.append(pid)
            else:
                path.unlink(missing_ok=True)
        return tuple(sorted(live))

    def states(self) -> tuple[EntryState, ...]:
        return tuple(
            EntryState(record=r, path=self.entry_path(r.sha256), last_use=self.last_use(r),
                       pinned=self.is_pinned(r.sha256), leases=self.live_leases(r.sha256))
            for r in self.records())

    # -- names ---------------------------------------------------------------------------------

    def set_name(self, record: EntryRecord) -> None:
        with self.lock("names"):
            self._write_name(record)

    def _write_name(self, record: EntryRecord) -> None:
        atomic_write_text(self.root / "names" / f"{record.name}.json", canonical_json(
            {"name": record.name, "version": record.version, "sha256": record.sha256}))

    def _repoint_name(self, name: str) -> None:
        """After an eviction: the name means its newest remaining entry, or nothing."""
        with self.lock("names"):
            current = self._named(name)
            if current is not None and self.record(current) is not None:
                return
            left = [r for r in self.records() if r.name == name]
            if left:
                self._write_name(max(left, key=lambda r: (version_key(r.version),
                                                          r.installed_at)))
            else:
                (self.root / "names" / f"{name}.json").unlink(missing_ok=True)

    def _named(self, name: str) -> str | None:
        try:
            data = json.loads((self.root / "names" / f"{name}.json").read_text(encoding="utf-8"))
            sha = data["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return sha if isinstance(sha, str) and _SHA.match(sha) else None

    def resolve(self, ref: str) -> EntryRecord:
        """An entry by ``NAME``, ``NAME@VERSION`` or a sha256 (prefix of at least 8 digits)."""
        records = self.records()
        if re.fullmatch(r"[0-9a-f]{8,64}", ref):
            hits = [r for r in records if r.sha256.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise StoreError(f"{ref!r} matches {len(hits)} entries", where=str(self.root),
                                 hint="give more digits")
        name, _, version = ref.partition("@")
        if not _NAME.match(name):
            raise UsageError(f"not a bundle name, NAME@VERSION or sha256: {ref!r}")
        if version:
            hits = [r for r in records if r.name == name and r.version == version]
            if not hits:
                raise self._missing(ref, records)
            return max(hits, key=self.last_use)
        named = self._named(name)
        record = self.record(named) if named else None
        if record is None:
            raise self._missing(ref, records)
        return record

    def _missing(self, ref: str, records: tuple[EntryRecord, ...]) -> BuilderError:
        have = sorted({f"{r.name}@{r.version}" for r in records})
        return StoreError(f"no entry {ref} in the store", where=str(self.root),
                          hint=f"installed: {', '.join(have)}" if have
                          else "the store is empty; use `builder agent install`")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where that is not available."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _sha_of_tmp(name: str) -> str | None:
    parts = name.split(".")
    candidate = parts[1] if parts[0] == "evict" and len(parts) > 1 else parts[0]
    return candidate if _SHA.match(candidate) else None
