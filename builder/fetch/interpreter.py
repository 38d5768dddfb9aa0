"""The interpreter input of a build: a verified PBS archive in the cache, or one given by the user.

``fetch_interpreter`` downloads a pinned PBS asset (from a mirror when given) into
``cache/pbs/<sha256>/<filename>``; ``interpreter_from`` accepts ``--python-from`` (an archive in
PBS layout, or an installed CPython prefix that is imported first); ``extract_interpreter`` unpacks
an archive safely so that ``dest/python/bin/python3`` exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder import __version__
from builder.cpython import import_runtime
from builder.cpython.importer import IMPORT_FORMAT_VERSION, imported_filename, kept_files
from builder.cpython.prefix import (
    PrefixInfo,
    probe_prefix,
    triple_from_sysconfigdata,
    version_from_patchlevel,
)
from builder.errors import BuilderError
from builder.fsutil import atomic_write_text, canonical_json, rmtree, sha256_file
from builder.lock.model import InterpreterPin
from builder.net import NetTransport, NetworkError, Transport
from builder.pbs import MIRROR_ENV, mirror_location
from builder.tarsafe import check_member_name, open_tar_stream, safe_extract

Origin = Literal["pbs", "imported", "archive"]

UNREACHABLE_HINT = (
    f"without access to the release location, set {MIRROR_ENV} to a mirror (a base URL or a "
    "directory laid out as <release>/<file>), or build with "
    "'builder build --python-from ARCHIVE|PREFIX': ARCHIVE made by "
    "'builder runtime import PREFIX --out DIR', or PREFIX an installed CPython"
)
CACHE_HINT = ("make the cache directory writable, or choose another one with BUILDER_CACHE_DIR")
_BIN = re.compile(r"^python/bin/python(3\.\d+)$")
_PATCHLEVEL = re.compile(r"^python/include/python3\.\d+[a-z]*/patchlevel\.h$")
_SYSCONFIG = re.compile(r"^python/lib/python3\.\d+/(_sysconfigdata_[^/]*\.py)$")
_FILENAME_TRIPLE = re.compile(
    r"^cpython-[^+]+\+[^-]+-(.+-linux-[a-z0-9_]+)-install_only(?:_stripped)?\.tar\.(?:gz|zst)$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterpreterSource:
    archive: Path
    sha256: str
    python_version: str
    triple: str
    origin: Origin


def cache_path(pin: InterpreterPin, cache_dir: Path) -> Path:
    return cache_dir / "pbs" / pin.sha256 / pin.filename


def fetch_interpreter(
    pin: InterpreterPin,
    *,
    cache_dir: Path,
    mirror: str | None,
    progress: bool,
    transport: Transport | None = None,
) -> Path:
    """A verified archive of ``pin`` in the cache: a hit is re-hashed, a miss is downloaded from
    ``mirror`` (if given) or the pin's URL and kept only when its sha256 matches."""
    dest = cache_path(pin, cache_dir)
    if dest.is_file():
        if sha256_file(dest) == pin.sha256:
            return dest
        dest.unlink()  # a damaged cache entry: fetch it again
    source = mirror_location(mirror, pin.release, pin.filename) if mirror else pin.url
    fetcher = transport if transport is not None else NetTransport()
    try:
        fetcher.fetch_to(source, dest, expected_sha256=pin.sha256, progress=progress,
                         what=pin.filename)
    except NetworkError as exc:
        _remove_empty(dest.parent)
        raise NetworkError(
            f"cannot download the Python interpreter {pin.filename}: {exc.what}",
            where=exc.where or source, hint=UNREACHABLE_HINT, missing=exc.missing,
        ) from exc
    except BaseException:
        _remove_empty(dest.parent)
        raise
    return dest


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def pbs_source(pin: InterpreterPin, archive: Path) -> InterpreterSource:
    """The source record of an archive ``fetch_interpreter`` returned."""
    return InterpreterSource(archive=archive, sha256=pin.sha256, python_version=pin.python_version,
                             triple=pin.triple, origin="pbs")


# -- --python-from -------------------------------------------------------------------------------


def _not_pbs(archive: Path, what: str) -> BuilderError:
    return BuilderError(
        f"not a python-build-standalone install_only archive: {what}",
        where=str(archive),
        hint="give an install_only(_stripped) PBS archive (top directory python/ with "
        "bin/python3.X) or make one with 'builder runtime import PREFIX --out DIR'",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveFacts:
    python_version: str
    triple: str
    imported: bool  # made by `builder runtime import` (PYTHON.json says so)


def inspect_archive(archive: Path) -> ArchiveFacts:
    """Python version and target triple of an archive in PBS install_only layout.

    From ``python/PYTHON.json`` when present, else from ``python/bin/python3.X``,
    ``include/python3.X/patchlevel.h``, the ``_sysconfigdata`` name or the file name.
    """
    minors: list[str] = []
    meta: dict[str, object] = {}
    patch_version: str | None = None
    sys_triple: str | None = None
    full_layout = False
    count = 0
    with open_tar_stream(archive) as tar:
        for member in tar:
            count += 1
            name = check_member_name(member.name, where=f"{archive}: {member.name}").as_posix()
            if name != "python" and not name.startswith("python/"):
                raise _not_pbs(archive, f"member {member.name!r} outside the top directory "
                                        "python/")
            if name.startswith("python/install/"):
                full_layout = True
            if match := _BIN.match(name):
                minors.append(match.group(1))
            elif name == "python/PYTHON.json" and member.isreg():
                meta = _read_json_member(tar, member, archive)
            elif _PATCHLEVEL.match(name) and member.isreg():
                patch_version = version_from_patchlevel(_read_member(tar, member).decode(
                    "utf-8", "replace"))
            elif (match := _SYSCONFIG.match(name)) and sys_triple is None:
                sys_triple = triple_from_sysconfigdata(match.group(1))
    if count == 0:
        raise _not_pbs(archive, "empty archive")
    if full_layout and not minors:
        raise _not_pbs(archive, "a full (python/install/...) archive; use an install_only flavor")
    if not minors:
        raise _not_pbs(archive, "no python/bin/python3.X")
    minor = max(minors, key=lambda v: tuple(int(x) for x in v.split(".")))
    version = _meta_str(meta, "python_version") or patch_version or minor
    match = _FILENAME_TRIPLE.match(archive.name)
    triple = (_meta_str(meta, "target_triple") or sys_triple
              or (match.group(1) if match else None))
    if triple is None:
        raise _not_pbs(archive, "cannot tell the target triple (no PYTHON.json, no "
                                "_sysconfigdata, no PBS file name)")
    return ArchiveFacts(python_version=version, triple=triple,
                        imported=isinstance(meta.get("builder_import"), dict))


def _read_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int = 1 << 20
) -> bytes:
    handle = tar.extractfile(member)
    return handle.read(limit) if handle is not None else b""


def _read_json_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path
) -> dict[str, object]:
    try:
        data = json.loads(_read_member(tar, member))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _not_pbs(archive, f"python/PYTHON.json is not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _meta_str(meta: dict[str, object], key: str) -> str | None:
    value = meta.get(key)
    return value if isinstance(value, str) and value else None


IMPORT_RECORD = "import.json"  # beside a cached import: the archive's name and sha256
FINGERPRINT_FORMAT = 2  # 2: every kept file of the prefix, and the archive's recorded sha256


def prefix_fingerprint(info: PrefixInfo) -> str:
    """A cheap key for an installed prefix: path, size and mtime of every file the import keeps
    (an added, removed or edited file gives another key), plus the host's library cache
    (vendored libraries come from there) and builder's version."""
    root = info.root
    stats: list[list[object]] = []
    for parts, path in kept_files(info):
        with contextlib.suppress(OSError):
            st = path.lstat()
            stats.append(["/".join(parts), st.st_size, st.st_mtime_ns, st.st_mode])
    with contextlib.suppress(OSError):
        st = Path("/etc/ld.so.cache").stat()
        stats.append(["/etc/ld.so.cache", st.st_size, st.st_mtime_ns, st.st_mode])
    record = {"builder": __version__, "format": IMPORT_FORMAT_VERSION,
              "fingerprint": FINGERPRINT_FORMAT, "prefix": str(root.resolve()), "files": stats}
    return hashlib.sha256(canonical_json(record).encode()).hexdigest()[:32]


def _cached_import(archive: Path, log: Callable[[str], None]) -> str | None:
    """The sha256 of a cached import when it still has the bytes recorded when it was made;
    else None (and the damaged entry is removed, with a message)."""
    record_path = archive.parent / IMPORT_RECORD
    if not archive.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        recorded = record["sha256"] if record.get("archive") == archive.name else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        recorded = None
    actual = sha256_file(archive)
    if isinstance(recorded, str) and actual == recorded:
        return actual
    log(f"warning: the cached import {archive} does not have the sha256 recorded when it was "
        f"made (recorded {recorded}, found {actual}): importing the prefix again")
    archive.unlink()
    record_path.unlink(missing_ok=True)
    return None


def interpreter_from(path: Path, *, cache_dir: Path,
                     log: Callable[[str], None] = lambda _msg: None) -> InterpreterSource:
    """``--python-from``: an archive is used as is; an installed CPython prefix is imported (once
    per unchanged prefix) into ``cache_dir/imported/``. A cached import is hashed each time it
    is used and must match the sha256 recorded when it was made; that hash is the one the
    build records."""
    if path.is_dir():
        info = probe_prefix(path)
        out_dir = cache_dir / "imported" / prefix_fingerprint(info)
        archive = out_dir / imported_filename(info)
        digest = _cached_import(archive, log)
        if digest is not None:
            return InterpreterSource(archive=archive, sha256=digest,
                                     python_version=info.python_version, triple=info.triple,
                                     origin="imported")
        imported = import_runtime(path, out_dir, cache_dir=cache_dir)
        try:
            atomic_write_text(out_dir / IMPORT_RECORD, canonical_json(
                {"archive": imported.path.name, "sha256": imported.sha256}))
        except OSError as exc:
            raise BuilderError(f"cannot write to the cache: {exc.strerror or exc}",
                               where=str(out_dir), hint=CACHE_HINT) from exc
        return InterpreterSource(archive=imported.path, sha256=imported.sha256,
                                 python_version=imported.python_version, triple=imported.triple,
                                 origin="imported")
    if not path.is_file():
        raise BuilderError("no such file or directory", where=str(path),
                           hint="--python-from takes a PBS archive or an installed CPython prefix")
    digest = sha256_file(path)
    facts = inspect_archive(path)
    return InterpreterSource(archive=path, sha256=digest, python_version=facts.python_version,
                             triple=facts.triple,
                             origin="imported" if facts.imported else "archive")


# -- extraction ----------------------------------------------------------------------------------


def extract_interpreter(archive: Path, dest: Path) -> Path:
    """Extract a PBS-layout archive into ``dest`` and return ``dest/python``.

    Extraction goes to a sibling work directory that is renamed into place, so ``dest/python``
    is either complete or absent.
    """
    final = dest / "python"
    if final.exists() or final.is_symlink():
        raise BuilderError("already exists", where=str(final),
                           hint="remove it or extract into an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        safe_extract(archive, work)
        names = sorted(p.name for p in work.iterdir())
        if names != ["python"]:
            raise _not_pbs(archive, f"top-level entries {names}, expected only python/")
        if not (work / "python" / "bin" / "python3").exists():
            raise _not_pbs(archive, "no python/bin/python3 after extraction")
        (work / "python").rename(final)
    finally:
        rmtree(work)
    return final
