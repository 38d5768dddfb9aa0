"""Layer, config and manifest of a bundle's image: content, determinism, refusals."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from oci_fakes import EPOCH, make_bundle, manifest_dict

from builder.errors import BuilderError
from builder.fsutil import canonical_json
from builder.oci import write_image
from builder.oci.layer import write_layer


def layer_members(bundle: Path) -> tuple[list[tarfile.TarInfo], dict[str, bytes], bytes]:
    out = io.BytesIO()
    write_layer(bundle, out)
    raw = out.getvalue()
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw)), mode="r:") as tar:
        members = tar.getmembers()
        for m in members:
            if m.isreg():
                fh = tar.extractfile(m)
                assert fh is not None
                contents[m.name] = fh.read()
    return members, contents, raw


def test_layer_is_the_app_tree_at_the_root_normalised(tmp_path: Path) -> None:
    members, contents, raw = layer_members(make_bundle(tmp_path / "b.tar.zst", umask=0o077))
    assert [(m.name, m.type, m.mode) for m in members] == [
        ("bin", tarfile.DIRTYPE, 0o755),
        ("bin/tool", tarfile.REGTYPE, 0o755),
        ("python", tarfile.DIRTYPE, 0o755),
        ("python/bin", tarfile.DIRTYPE, 0o755),
        ("python/bin/python3", tarfile.SYMTYPE, 0o777),
        ("python/lib", tarfile.DIRTYPE, 0o755),
        ("python/lib/mod.py", tarfile.REGTYPE, 0o644),
        ("share", tarfile.DIRTYPE, 0o755),
        ("share/data.txt", tarfile.REGTYPE, 0o644),
        ("share/empty", tarfile.DIRTYPE, 0o755),
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(EPOCH, 0, 0, "", "")}
    assert members[4].linkname == "python3.11"
    assert contents["bin/tool"] == b"#!/bin/sh\necho hi\n"
    # gzip header: deflate, no flags (no file name), mtime 0
    assert raw[:8] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00"


def test_same_content_same_digests_whatever_the_bundle_bytes(tmp_path: Path) -> None:
    a = make_bundle(tmp_path / "a.tar.zst", level=1, umask=0o022)
    b = make_bundle(tmp_path / "b.tar.zst", level=19, umask=0o077)
    assert a.read_bytes() != b.read_bytes()
    image_a = write_image(a, tmp_path / "blobs-a")
    image_b = write_image(b, tmp_path / "blobs-b")
    assert image_a.manifest_bytes == image_b.manifest_bytes
    assert image_a.layer == image_b.layer
    other = write_image(make_bundle(tmp_path / "c.tar.zst", files={"app/x": b"1"}),
                        tmp_path / "blobs-c")
    assert other.layer.digest != image_a.layer.digest


def test_blobs_match_their_descriptors(tmp_path: Path) -> None:
    image = write_image(make_bundle(tmp_path / "b.tar.zst"), tmp_path / "blobs")
    names = sorted(p.name for p in (tmp_path / "blobs" / "sha256").iterdir())
    assert names == sorted(d.digest[7:] for d in (image.layer, image.config, image.manifest))
    for descriptor in (image.layer, image.config, image.manifest):
        data = image.blob_path(descriptor.digest).read_bytes()
        assert len(data) == descriptor.size
        assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor.digest
    layer_tar = gzip.decompress(image.blob_path(image.layer.digest).read_bytes())
    config = json.loads(image.config_bytes)
    assert config == {
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Labels": {"eu.simphony-project.docker.ui_name": "Tiny"}},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
    }


def test_config_labels_are_simphony_remotes_and_the_manifests(tmp_path: Path) -> None:
    ui = {"kind": "webapp", "name": "Jupyter 6", "description": "Notebooks",
          "icon": "app/share/icon-128.png", "icon_128": "iVBORw0KGgo=",
          "accepted_env": ["JUPYTER_TOKEN", "X11_WIDTH"]}
    manifest = manifest_dict(ui=ui, labels={"ai.backend.service-ports": "tiny:http:8888"})
    image = write_image(make_bundle(tmp_path / "b.tar.zst", manifest=manifest),
                        tmp_path / "blobs")
    assert json.loads(image.config_bytes)["config"]["Labels"] == {
        "ai.backend.service-ports": "tiny:http:8888",
        "eu.simphony-project.docker.ui_name": "Jupyter 6",
        "eu.simphony-project.docker.icon_128": "iVBORw0KGgo=",
        "eu.simphony-project.docker.description": "Notebooks",
        "eu.simphony-project.docker.type": "webapp",
        "eu.simphony-project.docker.env.jupyter-token": "",
        "eu.simphony-project.docker.env.x11-width": ""}


def test_a_variable_simphony_cannot_name_is_refused(tmp_path: Path) -> None:
    manifest = manifest_dict(ui={"kind": "webapp", "name": "T", "accepted_env": ["http_proxy"]})
    with pytest.raises(BuilderError, match="accepted variable 'http_proxy' cannot be a "
                       "SimPhoNy env label"):
        write_image(make_bundle(tmp_path / "b.tar.zst", manifest=manifest), tmp_path / "blobs")


def test_manifest_annotations_carry_the_bundle_files(tmp_path: Path) -> None:
    image = write_image(make_bundle(tmp_path / "b.tar.zst"), tmp_path / "blobs")
    manifest = json.loads(image.manifest_bytes)
    assert image.manifest_bytes == json.dumps(manifest, sort_keys=True,
                                              separators=(",", ":")).encode()
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [la["mediaType"] for la in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"]
    assert manifest["annotations"] == {
        "org.opencontainers.image.title": "tiny",
        "org.opencontainers.image.version": "1.0",
        "org.opencontainers.image.description": "A tiny app",
        "io.builder.manifest": canonical_json(manifest_dict()),
        "io.builder.service-def": '{"prestart": []}\n',
        "io.builder.ui": '{"kind":"cli","name":"Tiny"}',
        "io.builder.target": "x86_64-unknown-linux-gnu",
        "io.builder.final-root": "/opt/apps/tiny",
        "io.builder.input-digest": "sha256:" + "ab" * 32,
    }


def test_arm64_and_no_service_def(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.tar.zst", service_def=False, manifest=manifest_dict(
        arch="aarch64", target="aarch64-unknown-linux-gnu", summary=""))
    image = write_image(bundle, tmp_path / "blobs")
    annotations = json.loads(image.manifest_bytes)["annotations"]
    assert "io.builder.service-def" not in annotations
    assert "org.opencontainers.image.description" not in annotations
    assert json.loads(image.config_bytes)["architecture"] == "arm64"


@pytest.mark.parametrize(("files", "manifest", "message"), [
    ({"app/share/.wh.gone": b""}, None,
     "app/share/.wh.gone: names starting with '.wh.' mean deletions in an OCI layer"),
    ({}, manifest_dict(arch="riscv64"), "manifest.json: no OCI architecture for 'riscv64'"),
    ({}, {"name": "x"}, "manifest.json: missing or not strings: version, arch, target, "
     "final_root, input_digest"),
])
def test_refusals(tmp_path: Path, files: dict[str, bytes], manifest: dict[str, object] | None,
                  message: str) -> None:
    bundle = make_bundle(tmp_path / "b.tar.zst", files=files, manifest=manifest)
    with pytest.raises(BuilderError) as info:
        write_image(bundle, tmp_path / "blobs")
    assert message in str(info.value)
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []  # nothing half-written kept


def test_a_bundle_with_a_wrong_frame_checksum_is_refused(tmp_path: Path) -> None:
    """Every tar member reads fine; only zstd's frame checksum (its last 4 bytes) is wrong:
    the bundle is read to its end, so the damage is noticed and nothing is kept."""
    bundle = make_bundle(tmp_path / "b.tar.zst")
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(BuilderError) as info:
        write_image(bundle, tmp_path / "blobs")
    assert info.value.what.startswith("cannot read bundle: ")
    assert "checksum" in info.value.what
    assert "damaged" in str(info.value.hint)
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []


def test_not_a_bundle(tmp_path: Path) -> None:
    fake = tmp_path / "x.tar.zst"
    fake.write_bytes(b"not zstd at all")
    with pytest.raises(BuilderError, match="cannot read bundle"):
        write_image(fake, tmp_path / "blobs")
    with pytest.raises(BuilderError, match="no such bundle"):
        write_image(tmp_path / "missing.tar.zst", tmp_path / "blobs")
    sidecar = tmp_path / "x.json"
    sidecar.write_text("{}")
    with pytest.raises(BuilderError, match="not a bundle archive"):
        write_image(sidecar, tmp_path / "blobs")
