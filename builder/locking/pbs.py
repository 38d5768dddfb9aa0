"""Naming and pinning of python-build-standalone (PBS) release assets.

Pure except for the transport port: reading SHA256SUMS (or a per-asset ``.sha256``) and asking
for a size. When neither the release location nor the mirror can be read, the builtin table
``pbs_assets.json`` (real published values) is the fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from packaging.version import InvalidVersion, Version

from builder.errors import BuilderError, HashMismatchError
from builder.lock.model import InterpreterPin
from builder.net import NetTransport, NetworkError, Transport, local_path
from builder.pbs import DEFAULT_RELEASE_BASE, MIRROR_ENV, asset_url, mirror_location

SUMS_NAME = "SHA256SUMS"
TABLE_FORMAT_VERSION = 1
INSTALL_ONLY_FLAVORS = ("install_only", "install_only_stripped")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64})[ \t]+\*?(\S+)$")
_VERSION_TAIL = r"\d+(?:(?:a|b|rc)\d+)?"


def asset_extension(flavor: str) -> str:
    """``.tar.gz`` for the install_only flavors, ``.tar.zst`` for the full ones."""
    return ".tar.gz" if flavor in INSTALL_ONLY_FLAVORS else ".tar.zst"


def asset_filename(*, python_version: str, release: str, triple: str, flavor: str) -> str:
    """``cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz``."""
    return f"cpython-{python_version}+{release}-{triple}-{flavor}{asset_extension(flavor)}"


def parse_sha256sums(text: str, *, where: str = SUMS_NAME) -> dict[str, str]:
    """Parse ``<hex>  <filename>`` lines; a bad or conflicting line is an error with its number."""
    sums: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _SUMS_LINE.match(line)
        if match is None:
            raise BuilderError(
                f"line {number}: expected '<64 hex digits>  <file name>', got {line[:80]!r}",
                where=where,
                hint="the checksum file is damaged or is not a SHA256SUMS file",
            )
        digest, name = match.group(1).lower(), match.group(2)
        if sums.get(name, digest) != digest:
            raise BuilderError(
                f"line {number}: {name} listed twice with different sha256", where=where
            )
        sums[name] = digest
    return sums


def parse_sha256_file(text: str, *, filename: str, where: str) -> str:
    """A per-asset ``<filename>.sha256``: the hex digest, optionally followed by the name."""
    fields = text.split()
    if not fields or not _HEX64.match(fields[0].lower()) or fields[1:] not in ([], [filename]):
        raise BuilderError(
            f"expected the sha256 of {filename}, got {text.strip()[:80]!r}", where=where
        )
    return fields[0].lower()


def asset_pattern(*, python_minor: str, release: str, triple: str, flavor: str) -> re.Pattern[str]:
    """Matches the asset names of any patch release of ``python_minor``; group 1 is the version."""
    return re.compile(
        rf"^cpython-({re.escape(python_minor)}\.{_VERSION_TAIL})\+{re.escape(release)}"
        rf"-{re.escape(triple)}-{re.escape(flavor)}{re.escape(asset_extension(flavor))}$"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Found:
    python_version: str
    filename: str
    sha256: str


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def pick_asset(
    sums: Mapping[str, str], *, python_minor: str, release: str, triple: str, flavor: str
) -> tuple[str, str] | None:
    """The newest matching (python_version, filename) among ``sums``' names, if any."""
    pattern = asset_pattern(python_minor=python_minor, release=release, triple=triple,
                            flavor=flavor)
    hits = [(m.group(1), name) for name in sums if (m := pattern.match(name))]
    if not hits:
        return None
    return max(hits, key=lambda hit: _version_key(hit[0]))


# -- the builtin table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TableEntry:
    release: str
    python_version: str
    triple: str
    flavor: str
    sha256: str
    size: int | None

    @property
    def filename(self) -> str:
        return asset_filename(python_version=self.python_version, release=self.release,
                              triple=self.triple, flavor=self.flavor)


def parse_table(text: str, *, where: str) -> tuple[TableEntry, ...]:
    """Decode ``pbs_assets.json``; every problem is reported with its entry index."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BuilderError(f"not JSON: {exc}", where=where) from exc
    problems: list[str] = []
    if not isinstance(data, dict) or data.get("format_version") != TABLE_FORMAT_VERSION:
        raise BuilderError(f"expected an object with format_version {TABLE_FORMAT_VERSION}",
                           where=where)
    raw_assets = data.get("assets")
    if not isinstance(raw_assets, list):
        raise BuilderError("'assets' must be a list", where=where)
    entries: list[TableEntry] = []
    for index, raw in enumerate(raw_assets):
        key = f"assets[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{key}: must be an object")
            continue
        strings = {}
        for name in ("release", "python_version", "triple", "flavor", "sha256"):
            value = raw.get(name)
            if not isinstance(value, str) or not value:
                problems.append(f"{key}.{name}: must be a non-empty string")
            else:
                strings[name] = value
        size = raw.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            problems.append(f"{key}.size: must be a non-negative integer or null")
            size = None
        if "sha256" in strings and not _HEX64.match(strings["sha256"]):
            problems.append(f"{key}.sha256: must be 64 lowercase hex digits")
        if len(strings) == 5 and not problems:
            entries.append(TableEntry(size=size, **strings))
    if problems:
        raise BuilderError("invalid builtin PBS table:\n" + "\n".join(problems), where=where)
    return tuple(sorted(entries, key=lambda e: (e.release, e.triple, e.flavor, e.python_version)))


def builtin_table() -> tuple[TableEntry, ...]:
    resource = resources.files("builder.locking").joinpath("pbs_assets.json")
    return parse_table(resource.read_text(encoding="utf-8"),
                       where="builder/locking/pbs_assets.json")


def _table_sums(
    table: tuple[TableEntry, ...], *, release: str, triple: str, flavor: str
) -> dict[str, TableEntry]:
    return {
        e.filename: e
        for e in table
        if e.release == release and e.triple == triple and e.flavor == flavor
    }


# -- resolution ----------------------------------------------------------------------------------


def _lookup_online(
    transport: Transport,
    *,
    base: str,
    python_minor: str,
    release: str,
    triple: str,
    flavor: str,
    known_names: tuple[str, ...],
) -> tuple[_Found | None, list[str]]:
    """Search SHA256SUMS, then per-asset ``.sha256`` files of ``known_names``.

    Returns what was found and a note per place that could not be read (for the error message).
    A place that answers "not found" is no note; a damaged checksum file is an error. When the
    SHA256SUMS location is unreachable (not merely missing), nothing else is asked of it, so an
    offline lock does not wait for one timeout per file.
    """
    notes: list[str] = []
    sums_at = mirror_location(base, release, SUMS_NAME)
    try:
        sums = parse_sha256sums(transport.read_text(sums_at), where=sums_at)
    except NetworkError as exc:
        if not exc.missing:
            return None, [exc.message]
    else:
        hit = pick_asset(sums, python_minor=python_minor, release=release, triple=triple,
                         flavor=flavor)
        if hit is not None:
            return _Found(python_version=hit[0], filename=hit[1], sha256=sums[hit[1]]), notes
    pattern = asset_pattern(python_minor=python_minor, release=release, triple=triple,
                            flavor=flavor)
    for name in known_names:
        match = pattern.match(name)
        if match is None:
            continue
        at = mirror_location(base, release, name + ".sha256")
        try:
            text = transport.read_text(at)
        except NetworkError as exc:
            if not exc.missing:
                notes.append(exc.message)
            continue
        digest = parse_sha256_file(text, filename=name, where=at)
        return _Found(python_version=match.group(1), filename=name, sha256=digest), notes
    return None, notes


def _directory_names(mirror: str | None, release: str) -> tuple[str, ...]:
    """File names a local-directory mirror holds for a release (to find per-asset .sha256)."""
    try:
        folder_of_mirror = local_path(mirror) if mirror else None
    except NetworkError:
        return ()
    if folder_of_mirror is None:
        return ()
    folder = folder_of_mirror / release
    try:
        return tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


def resolve_pin(
    *,
    python_minor: str,
    release: str,
    triple: str,
    flavor: str,
    mirror: str | None,
    transport: Transport | None = None,
    table: tuple[TableEntry, ...] | None = None,
) -> InterpreterPin:
    """Pin the PBS asset of ``python_minor`` in ``release`` for ``triple`` and ``flavor``.

    Looks in the release's SHA256SUMS (at the mirror if given, else the release location), then
    in per-asset ``.sha256`` files, then in the builtin table. A checksum that contradicts the
    builtin table is refused. The pin's ``url`` is always the canonical release URL.
    """
    transport = transport if transport is not None else NetTransport()
    table = table if table is not None else builtin_table()
    base = mirror if mirror else DEFAULT_RELEASE_BASE
    known = _table_sums(table, release=release, triple=triple, flavor=flavor)
    names = tuple(sorted(set(known) | set(_directory_names(mirror, release))))
    found, notes = _lookup_online(
        transport, base=base, python_minor=python_minor, release=release, triple=triple,
        flavor=flavor, known_names=names,
    )
    entry = known.get(found.filename) if found else None
    if found is not None and entry is not None and entry.sha256 != found.sha256:
        raise HashMismatchError(
            what=f"published checksum of {found.filename}",
            where=mirror_location(base, release, found.filename),
            expected=entry.sha256,
            actual=found.sha256,
            hint="the checksum list disagrees with builder's builtin record of the release; "
            "the mirror may hold a different (rebuilt or tampered) file",
        )
    if found is None:
        pattern = asset_pattern(python_minor=python_minor, release=release, triple=triple,
                                flavor=flavor)
        table_hits = [(m.group(1), name) for name in known if (m := pattern.match(name))]
        if table_hits:
            version, filename = max(table_hits, key=lambda hit: _version_key(hit[0]))
            entry = known[filename]
            found = _Found(python_version=version, filename=filename, sha256=entry.sha256)
    if found is None:
        raise _not_found(python_minor=python_minor, release=release, triple=triple,
                         flavor=flavor, base=base, notes=notes)
    size = entry.size if entry is not None and entry.size is not None else None
    if size is None and not notes:
        size = transport.content_length(mirror_location(base, release, found.filename))
    return InterpreterPin(
        release=release,
        python_version=found.python_version,
        triple=triple,
        flavor=flavor,
        filename=found.filename,
        url=asset_url(DEFAULT_RELEASE_BASE, release, found.filename),
        sha256=found.sha256,
        size=size,
    )


def _not_found(
    *, python_minor: str, release: str, triple: str, flavor: str, base: str, notes: list[str]
) -> BuilderError:
    looked = f"looked in {mirror_location(base, release, SUMS_NAME)} and the builtin table"
    if notes:
        looked += "; could not read:\n    " + "\n    ".join(n.replace("\n", " ") for n in notes)
    wanted = asset_filename(python_version=f"{python_minor}.*", release=release, triple=triple,
                            flavor=flavor)
    return BuilderError(
        f"no python-build-standalone asset for Python {python_minor}, release {release}, "
        f"target {triple}, flavor {flavor} ({wanted}); {looked}",
        hint=f"check runtime.python / runtime.pbs_release / runtime.flavor in the recipe against "
        f"the release's SHA256SUMS; offline, set {MIRROR_ENV} to a base URL or directory laid "
        f"out as <release>/<file> holding SHA256SUMS, or build with --python-from ARCHIVE "
        f"(see 'builder runtime import')",
    )
