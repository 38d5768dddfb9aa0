"""Push and pull through the registry API v2, against an in-memory registry (no network)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from oci_fakes import FakeRegistry, make_bundle, response, tree_of

from builder.errors import BuilderError, HashMismatchError
from builder.net import NetworkError
from builder.oci import Credentials, pull_bundle, push_bundle, write_image
from builder.oci.http import HttpRequest, HttpResponse
from builder.oci.model import digest_of
from builder.tarsafe import UnsafeMemberError

REF = "reg.test/apps/tiny:1.0"


def extracted(bundle: Path, dest: Path) -> Path:
    """The bundle as `tar --zstd -xf` gives it (the reference a pull must reproduce)."""
    with bundle.open("rb") as raw:
        data = zstandard.ZstdDecompressor().stream_reader(raw).read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        tar.extractall(dest, filter="tar")
    return dest


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "tiny.tar.zst")


def test_push_then_pull_gives_back_the_bundle_content(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry()
    pushed = push_bundle(bundle, REF, plain_http=False, http=registry)
    expected = write_image(bundle, tmp_path / "blobs")
    assert pushed.digest == expected.manifest.digest
    assert str(pushed.pinned) == f"reg.test/apps/tiny@{pushed.digest}"
    assert pushed.uploaded == 2
    assert set(registry.blobs) == {expected.layer.digest, expected.config.digest}
    assert registry.manifests[("apps/tiny", "1.0")] == (
        expected.manifest_bytes, "application/vnd.oci.image.manifest.v1+json")
    assert all(url.startswith("https://reg.test/v2/apps/tiny/") for _, url in registry.requests)

    dest = pull_bundle("oci://reg.test/apps/tiny:1.0", tmp_path / "entry", plain_http=False,
                       http=registry)
    assert dest == tmp_path / "entry"
    assert tree_of(dest) == tree_of(extracted(bundle, tmp_path / "reference"))

    by_digest = pull_bundle(pushed.pinned, tmp_path / "pinned", plain_http=False, http=registry)
    assert tree_of(by_digest) == tree_of(dest)


def test_a_second_push_uploads_nothing(bundle: Path) -> None:
    registry = FakeRegistry()
    first = push_bundle(bundle, REF, plain_http=True, http=registry)
    registry.requests.clear()
    second = push_bundle(bundle, "reg.test/apps/tiny:latest", plain_http=True, http=registry)
    assert (second.digest, second.uploaded) == (first.digest, 0)
    assert [m for m, _ in registry.requests] == ["HEAD", "HEAD", "PUT"]
    assert registry.requests[0][1].startswith("http://reg.test/v2/")


def test_bearer_token_flow(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry(token="t0k")
    push_bundle(bundle, REF, plain_http=False, http=registry)
    assert registry.requests[:3] == [
        ("HEAD", f"https://reg.test/v2/apps/tiny/blobs/{registry.requests[0][1][-71:]}"),
        ("GET", "https://auth.test/token?service=reg.test&scope=repository%3Aapps%2Ftiny%3A"
         "pull%2Cpush"),
        ("HEAD", registry.requests[0][1]),
    ]
    pull_bundle(REF, tmp_path / "entry", plain_http=False, http=registry)
    assert (tmp_path / "entry" / "manifest.json").is_file()


def test_basic_challenge_without_credentials_is_refused(bundle: Path) -> None:
    class BasicOnly(FakeRegistry):
        def send(self, request: HttpRequest) -> HttpResponse:
            if dict(request.headers).get("Authorization") != Credentials(
                    username="u", password="p").basic():
                return response(401, www_authenticate='Basic realm="reg"')
            return super().send(request)

    with pytest.raises(NetworkError) as info:
        push_bundle(bundle, REF, plain_http=False, http=BasicOnly())
    assert "the registry refused access (HTTP 401)" in str(info.value)
    assert "--password-stdin" in str(info.value)
    push_bundle(bundle, REF, plain_http=False, http=BasicOnly(),
                credentials=Credentials(username="u", password="p"))


def test_unknown_tag(tmp_path: Path) -> None:
    with pytest.raises(NetworkError) as info:
        pull_bundle("reg.test/apps/tiny:nope", tmp_path / "entry", plain_http=True,
                    http=FakeRegistry())
    assert str(info.value) == ("http://reg.test/v2/apps/tiny/manifests/nope: manifest failed: "
                               "HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)")
    assert info.value.missing
    assert not (tmp_path / "entry").exists()


def test_pull_checks_the_manifest_digest(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry()
    pushed = push_bundle(bundle, REF, plain_http=True, http=registry)
    registry.manifests[("apps/tiny", pushed.digest)] = (b'{"tampered": 1}', "x")
    with pytest.raises(HashMismatchError, match="sha256 mismatch for image manifest"):
        pull_bundle(pushed.pinned, tmp_path / "entry", plain_http=True, http=registry)
    assert not (tmp_path / "entry").exists()


def test_pull_checks_the_layer_and_leaves_nothing(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry()
    pushed = push_bundle(bundle, REF, plain_http=True, http=registry)
    layer = json.loads(registry.manifests[("apps/tiny", "1.0")][0])["layers"][0]["digest"]
    registry.blobs[layer] = registry.blobs[layer][:-10] + b"0123456789"
    dest = tmp_path / "entry"
    dest.mkdir()  # an existing empty directory is emptied again, not removed
    with pytest.raises(HashMismatchError, match="sha256 mismatch for blob"):
        pull_bundle(pushed.pinned, dest, plain_http=True, http=registry)
    assert dest.is_dir() and list(dest.iterdir()) == []


def _repush(registry: FakeRegistry, manifest: dict[str, object]) -> None:
    data = json.dumps(manifest).encode()
    registry.manifests[("apps/tiny", "1.0")] = (data, "application/vnd.oci.image.manifest.v1+json")


def test_pull_checks_the_diff_id(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry()
    push_bundle(bundle, REF, plain_http=True, http=registry)
    manifest = json.loads(registry.manifests[("apps/tiny", "1.0")][0])
    config = json.loads(registry.blobs[manifest["config"]["digest"]])
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    data = json.dumps(config).encode()
    registry.blobs[digest_of(data)] = data
    manifest["config"] = {**manifest["config"], "digest": digest_of(data), "size": len(data)}
    _repush(registry, manifest)
    with pytest.raises(HashMismatchError, match="uncompressed layer"):
        pull_bundle(REF, tmp_path / "entry", plain_http=True, http=registry)
    assert not (tmp_path / "entry").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"annotations": {}}, "not an image made by `builder push`"),
    ({"mediaType": "application/vnd.oci.image.index.v1+json"}, "this is an image index"),
    ({"mediaType": "application/vnd.docker.distribution.manifest.v2+json"},
     "not an OCI image manifest (application/vnd.docker.distribution.manifest.v2+json)"),
    ({"annotations": {"io.builder.manifest": "{}", "io.builder.file.app": "x"}},
     "bad bundle file annotation 'io.builder.file.app'"),
])
def test_pull_refuses_other_images(bundle: Path, tmp_path: Path, change: dict[str, object],
                                   message: str) -> None:
    registry = FakeRegistry()
    push_bundle(bundle, REF, plain_http=True, http=registry)
    manifest = json.loads(registry.manifests[("apps/tiny", "1.0")][0])
    _repush(registry, {**manifest, **change})
    with pytest.raises(BuilderError) as info:
        pull_bundle(REF, tmp_path / "entry", plain_http=True, http=registry)
    assert message in str(info.value)
    assert not (tmp_path / "entry").exists()


def test_pull_refuses_unsafe_layers(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry()
    push_bundle(bundle, REF, plain_http=True, http=registry)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("bin/evil")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    layer = gzip.compress(raw.getvalue(), mtime=0)
    registry.blobs[digest_of(layer)] = layer
    manifest = json.loads(registry.manifests[("apps/tiny", "1.0")][0])
    manifest["layers"] = [{**manifest["layers"][0], "digest": digest_of(layer),
                           "size": len(layer)}]
    _repush(registry, manifest)
    with pytest.raises(UnsafeMemberError, match="link to an absolute path"):
        pull_bundle(REF, tmp_path / "entry", plain_http=True, http=registry)
    assert not (tmp_path / "entry").exists()


def test_pull_into_a_non_empty_directory_is_refused(bundle: Path, tmp_path: Path) -> None:
    registry = FakeRegistry()
    push_bundle(bundle, REF, plain_http=True, http=registry)
    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "keep").write_text("x")
    with pytest.raises(BuilderError, match="the destination is not empty"):
        pull_bundle(REF, tmp_path / "entry", plain_http=True, http=registry)
    assert (tmp_path / "entry" / "keep").read_text() == "x"
