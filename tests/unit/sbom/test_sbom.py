from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from builder.sbom import collect_licenses, cyclonedx_sbom

MANIFEST: dict[str, Any] = {
    "name": "demo", "version": "1.0", "summary": "a demo", "target": "x86_64-unknown-linux-gnu",
    "input_digest": "sha256:" + "d" * 64, "glibc_floor": "2.17", "source_date_epoch": 315532800,
    "interpreter": {"origin": "pbs", "python_version": "3.11.7", "sha256": "a" * 64,
                    "filename": "cpython.tar.gz", "release": "20240107"},
    "packages": [
        {"name": "six", "version": "1.16.0", "sha256": "b" * 64, "wheel": "six.whl",
         "license": "MIT"},
        {"name": "odd", "version": "2", "sha256": "c" * 64, "wheel": "odd.whl",
         "license": "BSD License; Apache Software License"},
        {"name": "none", "version": "3", "sha256": "e" * 64, "wheel": "none.whl",
         "license": "UNKNOWN"},
    ],
}


def app_tree(root: Path) -> Path:
    app = root / "app"
    lib = app / "python" / "lib"
    lib.mkdir(parents=True)
    (lib / "libfake.so.1").write_bytes(b"\x7fELF" + b"\0" * 60)
    (lib / "libfake.so").symlink_to("libfake.so.1")
    (lib / "notes.txt").write_text("not a library")
    stdlib = lib / "python3.11"
    site = stdlib / "site-packages"
    (site / "six-1.16.0.dist-info").mkdir(parents=True)
    (site / "six-1.16.0.dist-info" / "METADATA").write_text("Name: six\nVersion: 1.16.0\n")
    (site / "six-1.16.0.dist-info" / "LICENSE").write_text("MIT text")
    lic = site / "Odd_Pkg-2.dist-info" / "licenses" / "sub"
    lic.mkdir(parents=True)
    (lic / "COPYING").write_text("odd text")
    (site / "Odd_Pkg-2.dist-info" / "METADATA").write_text("Name: Odd.Pkg\nVersion: 2\n")
    (site / "none-3.dist-info").mkdir()
    (stdlib / "LICENSE.txt").write_text("PSF")
    return app


def test_sbom_is_valid_cyclonedx_and_deterministic(tmp_path: Path) -> None:
    app = app_tree(tmp_path)
    sbom = cyclonedx_sbom(MANIFEST, app=app)
    text = json.dumps(sbom, sort_keys=True)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert json.dumps(cyclonedx_sbom(MANIFEST, app=app), sort_keys=True) == text
    by_name = {c["name"]: c for c in sbom["components"]}
    assert by_name["six"]["licenses"] == [{"expression": "MIT"}]
    assert by_name["six"]["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    assert by_name["odd"]["licenses"] == [
        {"license": {"name": "BSD License; Apache Software License"}}]
    assert "licenses" not in by_name["none"]
    assert by_name["cpython"]["version"] == "3.11.7"
    assert "libfake.so.1" in by_name and "libfake.so" not in by_name
    assert sbom["metadata"]["timestamp"] == "1980-01-01T00:00:00Z"
    assert sbom["serialNumber"].startswith("urn:uuid:")


def test_validator_rejects_a_broken_sbom(tmp_path: Path) -> None:
    sbom = cyclonedx_sbom(MANIFEST, app=app_tree(tmp_path))
    sbom["components"][0]["hashes"][0]["alg"] = "NOT-A-HASH"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is not None


def test_licenses_are_collected(tmp_path: Path) -> None:
    app = app_tree(tmp_path)
    site = app / "python/lib/python3.11/site-packages"
    missing = collect_licenses(app, site_packages=site, stdlib=site.parent)
    licenses = app / "share" / "licenses"
    assert (licenses / "six" / "LICENSE").read_text() == "MIT text"
    assert (licenses / "odd-pkg" / "sub" / "COPYING").read_text() == "odd text"
    assert (licenses / "cpython" / "LICENSE.txt").read_text() == "PSF"
    assert missing == ("none",)


@pytest.mark.parametrize("text", ["MIT", "Apache-2.0 OR MIT", "bsd-3-clause"])
def test_spdx_expressions_are_canonical(text: str, tmp_path: Path) -> None:
    manifest = {**MANIFEST, "packages": [{**MANIFEST["packages"][0], "license": text}]}
    sbom = cyclonedx_sbom(manifest, app=app_tree(tmp_path))
    assert "expression" in sbom["components"][-1]["licenses"][0]
