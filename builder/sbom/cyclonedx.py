"""A CycloneDX 1.6 JSON SBOM of a bundle, built from its manifest and its files."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from builder import __version__
from builder.elf import is_elf
from builder.fsutil import sha256_file

SBOM_SUFFIX = ".cdx.json"
SPEC_VERSION = "1.6"
_NAMESPACE = uuid.UUID("6f1c1a52-9d1e-4c55-9a3e-6b2a6c1d3e10")  # builder's SBOM namespace


def _licenses(text: str) -> list[dict[str, Any]]:
    if not text or text == "UNKNOWN":
        return []
    try:
        return [{"expression": canonicalize_license_expression(text)}]
    except InvalidLicenseExpression:
        return [{"license": {"name": text}}]


def _shared_libraries(python_dir: Path) -> list[tuple[str, str]]:
    """(file name, sha256) of the shared libraries the interpreter carries in ``python/lib``."""
    lib = python_dir / "lib"
    found = []
    for path in sorted(lib.iterdir()) if lib.is_dir() else []:
        if path.is_file() and not path.is_symlink() and ".so" in path.name and is_elf(path):
            found.append((path.name, sha256_file(path)))
    return found


def cyclonedx_sbom(manifest: dict[str, Any], *, app: Path) -> dict[str, Any]:
    """The SBOM document; equal bundles give equal documents."""
    name, version = str(manifest["name"]), str(manifest["version"])
    interpreter = manifest["interpreter"]
    epoch = int(manifest["source_date_epoch"])
    timestamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    python_ref = f"pkg:generic/cpython@{interpreter['python_version']}"
    components: list[dict[str, Any]] = [{
        "type": "application",
        "bom-ref": python_ref,
        "name": "cpython",
        "version": interpreter["python_version"],
        "purl": python_ref,
        "description": f"interpreter ({interpreter['origin']}: {interpreter['filename']})",
        "hashes": [{"alg": "SHA-256", "content": interpreter["sha256"]}],
        "licenses": [{"expression": "Python-2.0"}],
    }]
    library_refs = []
    for filename, digest in _shared_libraries(app / "python"):
        ref = f"{python_ref}#lib/{filename}"
        library_refs.append(ref)
        components.append({
            "type": "library",
            "bom-ref": ref,
            "name": filename,
            "hashes": [{"alg": "SHA-256", "content": digest}],
        })
    package_refs = []
    for package in manifest["packages"]:
        purl = f"pkg:pypi/{package['name']}@{package['version']}"
        package_refs.append(purl)
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": purl,
            "name": package["name"],
            "version": package["version"],
            "purl": purl,
            "hashes": [{"alg": "SHA-256", "content": package["sha256"]}],
        }
        built_from = package.get("built_from")
        if built_from:  # the wheel was built here from this sdist: name the source too
            component["pedigree"] = {"ancestors": [{
                "type": "library",
                "bom-ref": f"{purl}#sdist",
                "name": package["name"],
                "version": package["version"],
                "purl": f"{purl}?type=sdist",
                "hashes": [{"alg": "SHA-256", "content": built_from["sha256"]}],
            }]}
            component["properties"] = [{"name": "builder:built_from_sdist",
                                        "value": built_from["sdist"]}]
        licenses = _licenses(str(package.get("license", "")))
        if licenses:
            component["licenses"] = licenses
        components.append(component)
    app_ref = f"builder:{name}@{version}:{manifest['target']}"
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, str(manifest['input_digest']))}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [
                {"type": "application", "name": "builder", "version": __version__}]},
            "component": {
                "type": "application",
                "bom-ref": app_ref,
                "name": name,
                "version": version,
                "description": str(manifest.get("summary", "")),
                "properties": [
                    {"name": "builder:target", "value": str(manifest["target"])},
                    {"name": "builder:input_digest", "value": str(manifest["input_digest"])},
                    {"name": "builder:glibc_floor", "value": str(manifest["glibc_floor"])},
                ],
            },
        },
        "components": components,
        "dependencies": [
            {"ref": app_ref, "dependsOn": [python_ref, *package_refs]},
            {"ref": python_ref, "dependsOn": library_refs},
        ],
    }
