"""What a bundle's ``manifest.json`` must say before the agent believes it.

The manifest is read from the archive (its first member) and checked against the bundle schema,
against itself (``final_root``, ``target``) and against what the source promised: the sidecar's
copy of the manifest, the catalog's entry. Its ``sizes`` then bound the extraction and are compared
with what was actually extracted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from builder.agent.errors import RefusedBundleError
from builder.schema import problems


@cache
def manifest_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("builder.bundle").joinpath("manifest.schema.json").read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """What the source (sidecar, catalog, ``--sha256``) promised about the bundle."""

    sha256: str
    size: int | None = None  # of the archive
    name: str | None = None
    version: str | None = None
    target: str | None = None
    input_digest: str | None = None
    glibc_floor: str | None = None
    glibc_floor_known: bool = False  # True when glibc_floor (also None) was promised
    files: int | None = None
    unpacked_bytes: int | None = None
    manifest: str | None = None  # the sidecar's manifest (canonical JSON), compared whole
    vouched_by: str  # "--sha256", "sidecar <path>", "catalog <url>"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedManifest:
    name: str
    version: str
    target: str
    arch: str
    libc: str
    input_digest: str
    glibc_floor: str | None
    files: int
    unpacked_bytes: int
    data: dict[str, Any]


def check_manifest(raw: bytes, expect: Expectation, *, where: str) -> CheckedManifest:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RefusedBundleError(f"manifest.json is not valid JSON: {exc}", where=where) from exc
    found = list(problems(data, manifest_schema()))
    if found:
        shown = "\n  ".join(found[:10])
        raise RefusedBundleError(f"manifest.json does not match the bundle schema:\n  {shown}",
                                 where=where)
    if "archive" in data:
        raise RefusedBundleError("manifest.json inside the archive has an 'archive' key "
                                 "(only sidecars have one)", where=where)
    contradictions = _self_contradictions(data)
    if contradictions:
        raise RefusedBundleError("manifest.json contradicts itself: " + "; ".join(contradictions),
                                 where=where)
    broken = _broken_promises(data, expect)
    if broken:
        raise RefusedBundleError(f"manifest.json does not agree with the {expect.vouched_by}: "
                                 + "; ".join(broken), where=where)
    return CheckedManifest(
        name=data["name"], version=data["version"], target=data["target"], arch=data["arch"],
        libc=data["libc"], input_digest=data["input_digest"], glibc_floor=data["glibc_floor"],
        files=data["sizes"]["files"], unpacked_bytes=data["sizes"]["unpacked_bytes"], data=data)


def _self_contradictions(data: dict[str, Any]) -> list[str]:
    lies = []
    if data["final_root"] != f"/opt/apps/{data['name']}":
        lies.append(f"final_root is {data['final_root']!r}, not '/opt/apps/{data['name']}'")
    if data["target"] != f"{data['arch']}-unknown-linux-{data['libc']}":
        lies.append(f"target {data['target']!r} is not arch {data['arch']!r} with libc "
                    f"{data['libc']!r}")
    sizes = data["sizes"]
    if sizes["files"] < 0 or sizes["unpacked_bytes"] < 0:
        lies.append("negative sizes")
    return lies


def _broken_promises(data: dict[str, Any], expect: Expectation) -> list[str]:
    lies = []
    fields = (("name", data["name"], expect.name), ("version", data["version"], expect.version),
              ("target", data["target"], expect.target),
              ("input_digest", data["input_digest"], expect.input_digest),
              ("sizes.files", data["sizes"]["files"], expect.files),
              ("sizes.unpacked_bytes", data["sizes"]["unpacked_bytes"], expect.unpacked_bytes))
    for key, actual, promised in fields:
        if promised is not None and actual != promised:
            lies.append(f"{key} is {actual!r}, not {promised!r}")
    if expect.glibc_floor_known and data["glibc_floor"] != expect.glibc_floor:
        lies.append(f"glibc_floor is {data['glibc_floor']!r}, not {expect.glibc_floor!r}")
    if expect.manifest is not None and canonical(data) != expect.manifest:
        promised = json.loads(expect.manifest)
        listed = {lie.split(" ", 1)[0].split(".")[0] for lie in lies}
        differ = sorted(k for k in set(data) | set(promised)
                        if data.get(k) != promised.get(k) and k not in listed)
        if differ:
            lies.append(f"{'also ' if lies else ''}differs in {', '.join(differ)}")
    return lies


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Counted:
    """Regular files and their bytes, as extracted (symlinks and directories not counted)."""

    app_files: int
    app_bytes: int
    service_def_bytes: int | None  # None: no service-def.json
    # observations, not contents (left out of ==): blocks of every inode of the entry (each
    # once), and the blocks the extraction wrote (the rest was linked from the store's objects)
    disk_bytes: int = field(default=0, compare=False)
    new_bytes: int = field(default=0, compare=False)


def check_sizes(manifest: CheckedManifest, counted: Counted, *, where: str) -> None:
    """The manifest's ``sizes`` must match the extracted tree exactly.

    They count the regular files of the bundle other than manifest.json; ``service-def.json``
    may or may not be part of the count (it depends on when the build wrote it), so both readings
    are accepted, but nothing else.
    """
    readings = [(counted.app_files, counted.app_bytes)]
    if counted.service_def_bytes is not None:
        readings.append((counted.app_files + 1, counted.app_bytes + counted.service_def_bytes))
    declared = (manifest.files, manifest.unpacked_bytes)
    if declared not in readings:
        files, size = readings[-1]
        raise RefusedBundleError(
            f"manifest.json declares {manifest.files} files and {manifest.unpacked_bytes} bytes, "
            f"the archive holds {files} files and {size} bytes", where=where)
