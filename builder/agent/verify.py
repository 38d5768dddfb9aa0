"""``builder agent verify``: is an installed entry still what was installed?

For a bundle with a RECORD (``builder.bundle.record``): ``manifest.json`` must have the sha256 the
store recorded at install time, the RECORD the sha256 ``manifest.json`` names, and every path
below ``app/`` and ``service-def.json`` the type, mode, size, sha256 (or symlink target) the
RECORD lists; paths it does not list are differences too. Every file is read (nothing is written,
no lock is taken: a read-only or mounted store can be verified). For an older bundle without a
RECORD, the entry's regular files and bytes are recounted against its record. Both check that
every symlink under ``app/`` still resolves inside ``app/``.
With ``--elf`` it also reads every ELF file: a manifest that understates its glibc floor (what
``check`` relies on) or names another architecture is caught.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from builder.agent.store import RECORD, EntryRecord
from builder.bundle.record import RECORD_FILE, Difference, compare, parse, scan
from builder.errors import BuilderError
from builder.layout import APP, MANIFEST, SERVICE_DEF


def entry_problems(record: EntryRecord, entry: Path) -> list[str]:
    """The differences of :func:`entry_differences`, as text."""
    return [str(d) for d in entry_differences(record, entry)]


def entry_differences(record: EntryRecord, entry: Path, *, quick: bool = False
                      ) -> list[Difference]:
    """Every way the entry differs from what was installed (empty: intact).

    ``quick``: files whose inode has not changed since the entry was published (ctime older than
    its record, ``.complete``) are not read; everything else is checked as usual. Catches every
    change made through the file system (writes, chmod, renames, replacements), not bit rot on
    the disk; without ``quick`` every file is read."""
    app = entry / APP
    if not app.is_dir() or app.is_symlink():
        return [Difference(APP, "removed", "app/ is missing")]
    out = _top_level(record, entry)
    manifest, manifest_diff = _manifest(record, entry)
    out.extend(manifest_diff)
    named = manifest.get("record") if manifest is not None else None
    if isinstance(named, dict):  # symlink targets are in the RECORD, which install checked
        return out + _record_differences(entry, str(named.get("sha256")),
                                         since=_published_ns(entry) if quick else None)
    if manifest is not None:
        out.extend(_count_differences(record, entry))
    return out + _escaping_links(entry)


def _top_level(record: EntryRecord, entry: Path) -> list[Difference]:
    out = [Difference(p.name, "added", "a file the entry does not hold")
           for p in sorted(entry.iterdir()) if p.name not in (APP, MANIFEST, SERVICE_DEF, RECORD)]
    if (entry / SERVICE_DEF).is_file() != record.service_def:
        out.append(Difference(SERVICE_DEF, "added" if record.service_def is False else "removed",
                              "service-def.json appeared or disappeared"))
    return out


def _manifest(record: EntryRecord, entry: Path) -> tuple[dict[str, Any] | None,
                                                          list[Difference]]:
    try:
        raw = (entry / MANIFEST).read_bytes()
        manifest = json.loads(raw)
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        return None, [Difference(MANIFEST, "unreadable", "manifest.json is missing or unreadable")]
    out = []
    actual = hashlib.sha256(raw).hexdigest()
    if record.manifest_sha256 is not None and actual != record.manifest_sha256:
        out.append(Difference(MANIFEST, "content", f"content differs (sha256 {actual[:16]}…, "
                                                   f"installed {record.manifest_sha256[:16]}…)"))
    mode = stat.S_IMODE((entry / MANIFEST).lstat().st_mode)
    if mode != 0o644:
        out.append(Difference(MANIFEST, "mode", f"mode {mode:04o}, installed 0644"))
    if (manifest.get("name"), manifest.get("version")) != (record.name, record.version):
        out.append(Difference(MANIFEST, "content", "names another bundle than the record"))
    return manifest, out


def _published_ns(entry: Path) -> int | None:
    try:
        return (entry / RECORD).lstat().st_mtime_ns
    except OSError:
        return None


def _record_differences(entry: Path, expected_sha: str, *, since: int | None
                        ) -> list[Difference]:
    path = entry / RECORD_FILE
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode):
            return [Difference(RECORD_FILE, "type", "the RECORD is not a regular file")]
        raw = path.read_bytes()
    except OSError as exc:
        return [Difference(RECORD_FILE, "removed" if isinstance(exc, FileNotFoundError)
                           else "unreadable", f"the RECORD cannot be read: {exc.strerror}")]
    out = []
    if stat.S_IMODE(st.st_mode) != 0o644:
        out.append(Difference(RECORD_FILE, "mode", f"mode {stat.S_IMODE(st.st_mode):04o}, "
                                                   "the RECORD says 0644"))
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected_sha:
        return [*out, Difference(RECORD_FILE, "content", "the RECORD is not the one "
                                 "manifest.json names: nothing else can be checked")]
    try:
        recorded = parse(raw, where=str(path))
    except BuilderError as exc:  # pragma: no cover (its sha256 matched the manifest)
        return [*out, Difference(RECORD_FILE, "content", exc.what)]
    found, unreadable = scan(entry, recorded=recorded, unchanged_before_ns=since)
    return out + sorted(unreadable + compare(recorded, found), key=lambda d: d.path)


def _count_differences(record: EntryRecord, entry: Path) -> list[Difference]:
    """A bundle without a RECORD: regular files and bytes under app/ recounted."""
    files = size = 0
    for directory, _dirnames, filenames in os.walk(entry / APP):
        for name in filenames:
            st = (Path(directory) / name).lstat()
            if stat.S_ISREG(st.st_mode):
                files += 1
                size += st.st_size
    service_def = entry / SERVICE_DEF
    readings = [(files, size)]
    if service_def.is_file():
        readings.append((files + 1, size + service_def.stat().st_size))
    if (record.files, record.unpacked_bytes) in readings:
        return []
    return [Difference(APP, "content", f"holds {files} files and {size} bytes under app/, the "
                       f"record says {record.files} files and {record.unpacked_bytes} bytes "
                       "(a bundle built without a RECORD: only counts can be checked)")]


def _escaping_links(entry: Path) -> list[Difference]:
    app = entry / APP
    real_app = os.path.realpath(app)
    out = []
    for directory, dirnames, filenames in os.walk(app):
        for name in dirnames + filenames:
            path = Path(directory) / name
            if path.is_symlink():
                resolved = os.path.realpath(path)
                if resolved != real_app and not resolved.startswith(real_app + os.sep):
                    out.append(Difference(path.relative_to(entry).as_posix(), "target",
                                          "symlink leaves app/"))
    return out


def elf_problems(entry: Path) -> list[str]:
    """Does the manifest tell the truth about its ELF files (architecture, glibc floor)?

    Reads every ELF file of the entry (slower: seconds for a large app); files the manifest
    lists in ``glibc_exempt`` do not count toward the floor, as at build time.
    """
    from builder.elf.read import (  # noqa: PLC0415 (pyelftools: imported only here)
        format_version,
        is_elf,
        parse_version,
        read_elf,
    )

    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        arch, declared = manifest["arch"], manifest["glibc_floor"]
        exempt = {item["file"] for item in manifest["glibc_exempt"]}
    except (OSError, ValueError, KeyError, TypeError):
        return ["manifest.json is missing or unreadable"]
    problems: list[str] = []
    top: tuple[int, ...] | None = None
    culprit = ""
    for directory, _dirnames, filenames in os.walk(entry / APP):
        for name in sorted(filenames):
            path = Path(directory) / name
            if path.is_symlink() or not is_elf(path):
                continue
            rel = path.relative_to(entry).as_posix()
            try:
                info = read_elf(path)
            except BuilderError as exc:
                problems.append(f"{rel}: {exc.what}")
                continue
            if info.arch != arch:
                problems.append(f"{rel} is built for {info.arch}, the manifest says {arch}")
            if rel not in exempt and info.max_glibc and (top is None or info.max_glibc > top):
                top, culprit = info.max_glibc, rel
    if top is not None and (declared is None or top > parse_version(declared)):
        problems.append(f"{culprit} needs glibc {format_version(top)}, the manifest's floor is "
                        f"{declared}")
    return problems
