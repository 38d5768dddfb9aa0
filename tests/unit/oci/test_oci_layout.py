"""``export_layout``: an OCI image layout holding one image per tag."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from oci_fakes import make_bundle, manifest_dict

from builder.errors import BuilderError, UsageError
from builder.oci import export_layout


def index_of(layout: Path) -> list[dict[str, object]]:
    data = json.loads((layout / "index.json").read_text())
    assert data["schemaVersion"] == 2
    assert data["mediaType"] == "application/vnd.oci.image.index.v1+json"
    manifests: list[dict[str, object]] = data["manifests"]
    return manifests


def test_export_writes_a_layout(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    exported = export_layout(make_bundle(tmp_path / "b.tar.zst"), layout)
    assert exported.tag == "1.0"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert index_of(layout) == [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": exported.image.manifest.digest,
        "size": exported.image.manifest.size,
        "annotations": {"org.opencontainers.image.ref.name": "1.0"},
        "platform": {"architecture": "amd64", "os": "linux"},
    }]
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert len(list((layout / "blobs" / "sha256").iterdir())) == 3


def test_tags_accumulate_and_a_tag_is_replaced(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    first = export_layout(make_bundle(tmp_path / "a.tar.zst"), layout, tag="latest")
    arm = make_bundle(tmp_path / "b.tar.zst", manifest=manifest_dict(
        arch="aarch64", target="aarch64-unknown-linux-gnu"))
    second = export_layout(arm, layout, tag="arm")
    assert [m["digest"] for m in index_of(layout)] == [second.image.manifest.digest,
                                                       first.image.manifest.digest]
    before = (layout / "index.json").read_bytes()
    export_layout(arm, layout, tag="arm")
    assert (layout / "index.json").read_bytes() == before  # same export, same bytes
    changed = make_bundle(tmp_path / "c.tar.zst", files={"app/new": b"x"})
    third = export_layout(changed, layout, tag="latest")
    assert [m["digest"] for m in index_of(layout)] == [second.image.manifest.digest,
                                                       third.image.manifest.digest]


def test_version_as_default_tag(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.tar.zst", manifest=manifest_dict(version="1.0+local"))
    assert export_layout(bundle, tmp_path / "layout").tag == "1.0_local"


def test_refuses_a_directory_that_is_not_a_layout(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(BuilderError, match="exists and is not an OCI image layout"):
        export_layout(make_bundle(tmp_path / "b.tar.zst"), other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    with pytest.raises(UsageError, match="bad tag '-x'"):
        export_layout(make_bundle(tmp_path / "c.tar.zst"), tmp_path / "l2", tag="-x")
