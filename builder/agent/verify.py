"""``builder agent verify``: is an installed entry still what was installed?

Recounts the entry's regular files and bytes against its record (which matched the manifest at
install time), and checks that every symlink under ``app/`` still resolves inside ``app/``.
With ``--elf`` it also reads every ELF file: a manifest that understates its glibc floor (what
``check`` relies on) or names another architecture is caught.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from builder.agent.store import RECORD, EntryRecord
from builder.elf import is_elf, read_elf
from builder.elf.read import format_version, parse_version
from builder.errors import BuilderError
from builder.layout import APP, MANIFEST, SERVICE_DEF


def entry_problems(record: EntryRecord, entry: Path) -> list[str]:
    problems: list[str] = []
    app = entry / APP
    if not app.is_dir() or app.is_symlink():
        return ["app/ is missing"]
    real_app = os.path.realpath(app)
    files = size = 0
    for directory, dirnames, filenames in os.walk(app):
        for name in dirnames + filenames:
            path = Path(directory) / name
            st = path.lstat()
            if path.is_symlink():
                resolved = os.path.realpath(path)
                if resolved != real_app and not resolved.startswith(real_app + os.sep):
                    problems.append(f"{path.relative_to(entry)}: symlink leaves app/")
            elif name in filenames:
                files += 1
                size += st.st_size
    service_def = entry / SERVICE_DEF
    readings = [(files, size)]
    if service_def.is_file():
        readings.append((files + 1, size + service_def.stat().st_size))
    if (record.files, record.unpacked_bytes) not in readings:
        problems.append(f"holds {files} files and {size} bytes under app/, the record says "
                        f"{record.files} files and {record.unpacked_bytes} bytes")
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        if (manifest["name"], manifest["version"]) != (record.name, record.version):
            problems.append("manifest.json names another bundle than the record")
    except (OSError, ValueError, KeyError, TypeError):
        problems.append("manifest.json is missing or unreadable")
    if service_def.is_file() != record.service_def:
        problems.append("service-def.json appeared or disappeared")
    extra = sorted(p.name for p in entry.iterdir()
                   if p.name not in (APP, MANIFEST, SERVICE_DEF, RECORD))
    if extra:
        problems.append(f"unexpected files in the entry: {', '.join(extra)}")
    return problems


def elf_problems(entry: Path) -> list[str]:
    """Does the manifest tell the truth about its ELF files (architecture, glibc floor)?

    Reads every ELF file of the entry (slower: seconds for a large app); files the manifest
    lists in ``glibc_exempt`` do not count toward the floor, as at build time.
    """
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
