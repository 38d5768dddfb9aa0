"""Installing from OCI images (``oci://REGISTRY/REPO@sha256:...``) against an in-memory
registry behind ``builder.oci``'s HTTP port, and the ImageVolume mount of such an entry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agent_factories import (
    DATA,
    RUN_SCRIPT,
    X86,
    M,
    base_members,
    canonical,
    link,
    make_bundle,
    manifest_dict,
    tar_bytes,
)

from builder.agent import InstallOptions, InstallResult, NetAgentTransport, Store, install
from builder.agent.errors import RefusedBundleError
from builder.agent.extract import Limits
from builder.agent.gc import collect_garbage
from builder.agent.mounts import MountFormat, k8s_image_fragment, mounts_for, render_plan
from builder.agent.oci import OciOptions
from builder.agent.source import resolve_source
from builder.agent.store import RECORD, EntryRecord
from builder.agent.verify import entry_problems
from builder.cli.main import main
from builder.errors import BuilderError, HashMismatchError, UsageError
from builder.oci import write_image
from builder.oci.http import HttpRequest, HttpResponse
from builder.oci.model import (
    ANN_FILE_PREFIX,
    ANN_MANIFEST,
    ANN_SERVICE_DEF,
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    Descriptor,
    canonical_bytes,
    image_manifest,
)

T = NetAgentTransport()
REPO = "apps/demo"


def _response(status: int, body: bytes = b"", content_type: str = "") -> HttpResponse:
    headers = {"content-type": content_type} if content_type else {}
    return HttpResponse(status=status, headers=headers, stream=io.BytesIO(body))


@dataclass
class Registry:
    """A read-only registry API v2 at reg.test, in memory; ``delay`` slows blob downloads."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)  # tag or digest -> bytes
    requests: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request: HttpRequest) -> HttpResponse:
        path = urllib.parse.urlsplit(request.url).path
        with self.lock:
            self.requests.append((request.method, path))
        if m := re.fullmatch(rf"/v2/{REPO}/manifests/([^/]+)", path):
            data = self.manifests.get(m[1])
            return _response(404) if data is None else _response(200, data, MEDIA_MANIFEST)
        if m := re.fullmatch(rf"/v2/{REPO}/blobs/(sha256:[0-9a-f]{{64}})", path):
            blob = self.blobs.get(m[1])
            if blob is not None and len(blob) > 4096:
                time.sleep(self.delay)
            return _response(404) if blob is None else _response(200, blob)
        return _response(404)

    def publish(self, manifest: bytes, blobs: dict[str, bytes], tag: str = "1.0") -> str:
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.blobs.update(blobs)
        self.manifests[tag] = self.manifests[digest] = manifest
        return digest

    def push(self, archive: Path, blobs_dir: Path, tag: str = "1.0") -> str:
        """What `builder push` would store for this bundle; returns the manifest digest."""
        image = write_image(archive, blobs_dir)
        return self.publish(image.manifest_bytes, {
            image.config.digest: image.config_bytes,
            image.layer.digest: image.blob_path(image.layer.digest).read_bytes()}, tag)

    def layer_gets(self) -> int:
        layers = {d for d, b in self.blobs.items() if not b.startswith(b"{")}
        return sum(1 for m, p in self.requests if m == "GET" and p.rsplit("/", 1)[-1] in layers)


def craft(registry: Registry, members: list[M], manifest: dict[str, Any] | None = None,
          annotations: dict[str, str] | None = None) -> str:
    """An image by hand: one gzip layer of ``members`` (paths relative to app/)."""
    tar = tar_bytes(members)
    layer = gzip.compress(tar, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    config = canonical_bytes({"architecture": "amd64", "os": "linux",
                              "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    config_d = Descriptor.of(MEDIA_CONFIG, config)
    layer_d = Descriptor.of(MEDIA_LAYER_GZIP, layer)
    notes = {ANN_MANIFEST: canonical(manifest or manifest_dict()).decode(),
             **(annotations or {})}
    data = image_manifest(config=config_d, layer=layer_d, annotations=notes)
    return registry.publish(data, {config_d.digest: config, layer_d.digest: layer})


def layer_members() -> list[M]:
    """base_members() re-rooted at app/ (what a layer holds)."""
    return [M(m.name.removeprefix("app/"), m.data, m.type, m.linkname, m.mode)
            for m in base_members() if m.name != "app"]


def put(source: str, store: Store, registry: Registry, *, sha256: str | None = None,
        limits: Limits | None = None) -> InstallResult:
    resolved = resolve_source(source, index=None, sha256=sha256, target=X86, transport=T)
    options = InstallOptions(limits=limits or Limits(),
                             oci=OciOptions(plain_http=True, http=registry))
    return install(resolved, store, transport=T, options=options)


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[Registry, str, Path]:
    """A fabricated bundle pushed to the in-memory registry: (registry, digest, archive)."""
    bundle = make_bundle(tmp_path / "dist")
    registry = Registry()
    return registry, registry.push(bundle.archive, tmp_path / "blobs"), bundle.archive


# -- resolution ------------------------------------------------------------------------------


def test_a_pinned_reference_is_the_hash_checked_first() -> None:
    digest = "sha256:" + "ab" * 32
    source = resolve_source(f"oci://reg.test/{REPO}@{digest}", index=None, sha256=None,
                            target=X86, transport=T)
    assert source.sha256 == "ab" * 32 and not source.is_local
    assert source.location == f"oci://reg.test/{REPO}@{digest}"
    assert source.image is not None and str(source.image) == f"reg.test/{REPO}@{digest}"
    assert source.expect.vouched_by == "reference's digest"
    tagged = resolve_source(f"oci://reg.test/{REPO}:1.0@{digest}", index=None,
                            sha256=digest, target=X86, transport=T)
    assert tagged.image == source.image  # pulled by digest; the tag is not what is checked


def test_a_tag_alone_is_refused_with_a_hint() -> None:
    with pytest.raises(RefusedBundleError, match="no digest to check the image manifest") as e:
        resolve_source(f"oci://reg.test/{REPO}:1.0", index=None, sha256=None, target=X86,
                       transport=T)
    assert "@sha256:" in (e.value.hint or "") and "builder push" in (e.value.hint or "")


def test_a_tag_with_sha256_means_the_manifest_digest() -> None:
    for given in ("cd" * 32, "sha256:" + "CD" * 32):
        source = resolve_source(f"oci://reg.test/{REPO}:1.0", index=None, sha256=given,
                                target=X86, transport=T)
        assert source.sha256 == "cd" * 32 and source.expect.vouched_by == "--sha256"
        assert str(source.image) == f"reg.test/{REPO}@sha256:{'cd' * 32}"


def test_disagreeing_digests_and_bad_references_are_refused() -> None:
    with pytest.raises(RefusedBundleError, match="disagrees with the reference's digest"):
        resolve_source(f"oci://reg.test/{REPO}@sha256:{'ab' * 32}", index=None,
                       sha256="cd" * 32, target=X86, transport=T)
    with pytest.raises(UsageError, match="registry is missing"):
        resolve_source("oci://demo@sha256:" + "ab" * 32, index=None, sha256=None,
                       target=X86, transport=T)


# -- install ---------------------------------------------------------------------------------


def test_install_from_an_image_gives_the_archive_install_tree(
        pushed: tuple[Registry, str, Path], tmp_path: Path) -> None:
    registry, digest, archive = pushed
    store = Store(root=tmp_path / "store")
    ref = f"oci://reg.test/{REPO}@{digest}"
    result = put(ref, store, registry)
    hexdigest = digest.removeprefix("sha256:")
    assert result.fresh and result.path == store.root / "entries" / hexdigest
    record = result.record
    assert (record.sha256, record.source) == (hexdigest, ref)
    assert record.oci_reference == f"reg.test/{REPO}@{digest}"
    assert json.loads((result.path / RECORD).read_text())["oci_reference"] == \
        record.oci_reference
    assert entry_problems(record, result.path) == []
    assert store.resolve("demo") == record and store.resolve(hexdigest[:10]) == record
    assert list(store.tmp_dir.iterdir()) == []

    by_archive = install(resolve_source(str(archive), index=None, sha256=None, target=X86,
                                        transport=T), Store(root=tmp_path / "s2"),
                         transport=T, options=InstallOptions())
    assert tree(result.path) == tree(by_archive.path)
    assert "oci_reference" not in json.loads((by_archive.path / RECORD).read_text())

    registry.requests.clear()  # a second install reuses the entry without asking
    again = put(ref, store, registry)
    assert not again.fresh and again.record == record and registry.requests == []


def test_an_install_asks_for_the_image_manifest_once(pushed: tuple[Registry, str, Path],
                                                     tmp_path: Path) -> None:
    registry, digest, _archive = pushed
    put(f"oci://reg.test/{REPO}@{digest}", Store(root=tmp_path / "store"), registry)
    manifest_gets = [p for m, p in registry.requests if m == "GET" and "/manifests/" in p]
    assert manifest_gets == [f"/v2/{REPO}/manifests/{digest}"]
    assert registry.layer_gets() == 1


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.name == RECORD:
            continue
        st = path.lstat()
        content = str(path.readlink()).encode() if path.is_symlink() else \
            b"" if path.is_dir() else path.read_bytes()
        found[path.relative_to(root).as_posix()] = (st.st_mode, content)
    return found


def test_tag_with_sha256_installs_by_digest(pushed: tuple[Registry, str, Path],
                                           tmp_path: Path) -> None:
    registry, digest, _ = pushed
    result = put(f"oci://reg.test/{REPO}:1.0", Store(root=tmp_path / "s"), registry,
                 sha256=digest)
    assert result.record.oci_reference == f"reg.test/{REPO}@{digest}"
    assert f"/v2/{REPO}/manifests/{digest}" in [p for _, p in registry.requests]
    assert f"/v2/{REPO}/manifests/1.0" not in [p for _, p in registry.requests]


def test_a_registry_serving_other_bytes_installs_nothing(pushed: tuple[Registry, str, Path],
                                                        tmp_path: Path) -> None:
    registry, digest, _ = pushed
    forged = "sha256:" + "0" * 64
    registry.manifests[forged] = registry.manifests[digest]
    store = Store(root=tmp_path / "s")
    with pytest.raises(HashMismatchError, match="image manifest"):
        put(f"oci://reg.test/{REPO}@{forged}", store, registry)
    assert registry.layer_gets() == 0
    assert list(store.entries_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_the_bundle_manifest_is_checked_before_the_layer_is_downloaded(tmp_path: Path) -> None:
    registry = Registry()
    store = Store(root=tmp_path / "s")
    lying = craft(registry, layer_members(), manifest_dict(final_root="/opt/apps/other"))
    with pytest.raises(RefusedBundleError, match="contradicts itself: final_root"):
        put(f"oci://reg.test/{REPO}@{lying}", store, registry)
    too_big = craft(registry, layer_members(), manifest_dict(name="big"))
    with pytest.raises(RefusedBundleError, match="above the limit of 10"):
        put(f"oci://reg.test/{REPO}@{too_big}", store, registry,
            limits=Limits(max_unpacked_bytes=10))
    broken = craft(registry, layer_members(), manifest_dict(sizes={"files": 2}))
    with pytest.raises(RefusedBundleError, match="bundle schema"):
        put(f"oci://reg.test/{REPO}@{broken}", store, registry)
    assert registry.layer_gets() == 0
    assert list(store.entries_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_an_image_not_made_by_builder_push_is_refused(tmp_path: Path) -> None:
    registry = Registry()
    data = canonical_bytes({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "layers": []})
    digest = registry.publish(data, {})
    with pytest.raises(BuilderError, match="not an image made by `builder push`"):
        put(f"oci://reg.test/{REPO}@{digest}", Store(root=tmp_path / "s"), registry)


@pytest.mark.parametrize(("members", "annotations", "message"), [
    ([*layer_members()[:-1], M("lib/data.txt", DATA + b"more")], {},
     "member 'app/lib/data.txt' claims 14 bytes, more than the 10 left of the 30 bytes"),
    ([*layer_members(), M("lib/extra.txt", b"")], {},
     "more files than the 2 manifest.json declares (at 'app/lib/extra.txt')"),
    ([*layer_members(), M("lib/hard", type=tarfile.LNKTYPE, linkname="lib/data.txt")], {},
     "hard link refused"),
    (layer_members(), {ANN_FILE_PREFIX + "evil.sh": "#!/bin/sh\n"},
     "unexpected files outside app/: evil.sh"),
    ([*layer_members(), link("bin/up", "../..")], {}, "symlink leaving app/: 'app/bin/up'"),
])
def test_what_the_pull_wrote_is_checked_like_an_archive(
        members: list[M], annotations: dict[str, str], message: str, tmp_path: Path) -> None:
    registry = Registry()
    store = Store(root=tmp_path / "s")
    digest = craft(registry, members, annotations=annotations)
    with pytest.raises(BuilderError, match=re.escape(message)):
        put(f"oci://reg.test/{REPO}@{digest}", store, registry)
    assert list(store.entries_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_a_crafted_valid_image_installs_with_normalised_modes(tmp_path: Path) -> None:
    registry = Registry()
    members = [M(m.name, m.data, m.type, m.linkname, 0o700 if m.name == "bin/run" else 0o600)
               if m.type == tarfile.REGTYPE else m for m in layer_members()]
    digest = craft(registry, members, annotations={ANN_SERVICE_DEF: "{}\n"})
    result = put(f"oci://reg.test/{REPO}@{digest}", Store(root=tmp_path / "s"), registry)
    assert (result.path / "app/bin/run").read_bytes() == RUN_SCRIPT
    assert (result.path / "app/bin/run").stat().st_mode & 0o777 == 0o755
    assert (result.path / "app/lib/data.txt").stat().st_mode & 0o777 == 0o644
    assert (result.path / "app").stat().st_mode & 0o777 == 0o755
    assert result.record.service_def and entry_problems(result.record, result.path) == []


def test_concurrent_installs_of_one_image_pull_once(pushed: tuple[Registry, str, Path],
                                                    tmp_path: Path) -> None:
    registry, digest, _ = pushed
    registry.delay = 0.2
    store = Store(root=tmp_path / "s")
    results: list[InstallResult] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(put(f"oci://reg.test/{REPO}@{digest}", store, registry))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(results) == 4
    assert sum(r.fresh for r in results) == 1 and registry.layer_gets() == 1


def test_pin_gc_and_names_work_on_image_entries(pushed: tuple[Registry, str, Path],
                                                tmp_path: Path) -> None:
    registry, digest, _ = pushed
    store = Store(root=tmp_path / "s")
    record = put(f"oci://reg.test/{REPO}@{digest}", store, registry).record
    store.pin(record.sha256)
    assert collect_garbage(store, 0).evicted == ()
    store.unpin(record.sha256)
    assert [s.record for s in collect_garbage(store, 0).evicted] == [record]
    with pytest.raises(BuilderError, match="no entry demo"):
        store.resolve("demo")


def test_records_stay_readable_across_versions() -> None:
    record = EntryRecord(sha256="ab" * 32, name="demo", version="1.0", target=X86,
                         arch="x86_64", libc="gnu", input_digest="sha256:" + "0" * 64,
                         glibc_floor=None, files=1, unpacked_bytes=1, disk_bytes=1,
                         service_def=False, installed_at=0.0, source="x.tar.zst")
    data = record.to_dict()
    assert "oci_reference" not in data  # an archive's record is what it was
    assert EntryRecord.from_dict(data) == record
    assert EntryRecord.from_dict({**data, "added_later": 1}) == record


# -- mounts ----------------------------------------------------------------------------------


def test_image_volume_of_an_image_entry(pushed: tuple[Registry, str, Path],
                                        tmp_path: Path) -> None:
    registry, digest, _ = pushed
    store = Store(root=tmp_path / "s")
    entry = put(f"oci://reg.test/{REPO}@{digest}", store, registry).path
    plan = mounts_for(store, "demo")
    assert json.loads(render_plan(plan, MountFormat.JSON))["image"] == f"reg.test/{REPO}@{digest}"
    data = json.loads(render_plan(plan, MountFormat.K8S, image_volume=True))
    assert data == {
        "volumes": [
            {"name": "builder-demo-app",
             "image": {"reference": f"reg.test/{REPO}@{digest}", "pullPolicy": "IfNotPresent"}},
            {"name": "builder-demo-service-def",
             "hostPath": {"path": str(entry / "service-def.json"), "type": "File"}}],
        "volumeMounts": [
            {"name": "builder-demo-app", "mountPath": "/opt/apps/demo", "readOnly": True},
            {"name": "builder-demo-service-def",
             "mountPath": "/etc/backend.ai/service-defs/demo.json", "readOnly": True}],
    }
    other = f"other.test/x@sha256:{'ef' * 32}"
    given = k8s_image_fragment(plan, f"oci://{other}")
    assert given["volumes"][0]["image"]["reference"] == other
    with pytest.raises(UsageError, match="a k8s mount"):
        render_plan(plan, MountFormat.DOCKER, image_volume=True)


def test_image_volume_of_an_archive_entry_needs_a_pinned_image(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    store = Store(root=tmp_path / "s")
    install(resolve_source(str(bundle.archive), index=None, sha256=None, target=X86,
                           transport=T), store, transport=T, options=InstallOptions())
    plan = mounts_for(store, "demo")
    assert json.loads(render_plan(plan, MountFormat.JSON))["image"] is None
    with pytest.raises(BuilderError, match="was not installed from an OCI image") as e:
        render_plan(plan, MountFormat.K8S, image_volume=True)
    assert "--image" in (e.value.hint or "")
    with pytest.raises(UsageError, match="has no digest"):
        render_plan(plan, MountFormat.K8S, image="reg.test/apps/demo:1.0")
    pinned = f"reg.test/apps/demo@sha256:{'ab' * 32}"
    data = json.loads(render_plan(plan, MountFormat.K8S, image=pinned))
    assert data["volumes"][0]["image"]["reference"] == pinned


def test_cli_image_volume_and_refusals(pushed: tuple[Registry, str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    registry, digest, archive = pushed
    store = Store(root=tmp_path / "s")
    put(f"oci://reg.test/{REPO}@{digest}", store, registry)
    argv = ["agent", "mounts", "demo", "--store", str(store.root), "--format", "k8s"]
    assert main([*argv, "--image-volume"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["volumes"][0]["image"]["reference"] == \
        f"reg.test/{REPO}@{digest}"
    assert "ImageVolume of reg.test" in captured.err and "hostPath" in captured.err
    assert main([*argv, "--image", f"other.test/x@sha256:{'ef' * 32}"]) == 0
    assert "the entry was installed from reg.test" in capsys.readouterr().err
    assert main([*argv[:-1], "docker", "--image-volume"]) == 2
    assert "go with --format k8s" in capsys.readouterr().err

    install_argv = ["agent", "install", f"oci://reg.test/{REPO}:1.0", "--store",
                    str(tmp_path / "s2"), "--plain-http"]
    assert main(install_argv) == 1
    err = capsys.readouterr().err
    assert "no digest to check the image manifest against" in err and "@sha256:" in err
    assert main(["agent", "install", str(archive), "--store", str(tmp_path / "s2"),
                 "--plain-http"]) == 2
    assert "for oci:// sources" in capsys.readouterr().err


class _Counting(io.BytesIO):
    """A stream that remembers how far it was read."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


@pytest.mark.parametrize(("hostile", "message"), [
    (M("../evil.txt", b"x"), "member leaving the destination: '../evil.txt'"),
    (M("/etc/evil.txt", b"x"), "member with an absolute path"),
    (M("lib/null", type=tarfile.CHRTYPE), "device or fifo refused: 'app/lib/null'"),
    (M("lib/fifo", type=tarfile.FIFOTYPE), "device or fifo refused"),
    (M("lib/big.bin", b"y" * 4096), "claims 4096 bytes, more than the"),
    (M("bin/suid", b"x", mode=0o4755), "set-uid/set-gid bit refused"),
    (M("lib/.wh.data.txt", b""), "whiteout entry"),
    (link("bin/out", "/etc/passwd"), "symlink to an absolute path"),
    (M("lib/hard", type=tarfile.LNKTYPE, linkname="lib/data.txt"), "hard link refused"),
])
def test_a_hostile_layer_member_is_refused_before_it_or_anything_after_it_is_written(
        hostile: M, message: str, tmp_path: Path) -> None:
    """The agent's layer extraction (the one install path) stops at the hostile member: it is not
    written, the members after it are neither written nor read."""
    from builder.agent.extract import LayerExtraction
    from builder.agent.manifest_check import Expectation, check_manifest

    later = [M(f"lib/later{i}.txt", b"z" * 10_000) for i in range(20)]
    members = [M(".", type=tarfile.DIRTYPE, mode=0o755), *layer_members(), hostile, *later]
    stream = _Counting(tar_bytes(members))
    total = len(stream.getvalue())
    manifest = check_manifest(canonical(manifest_dict()), Expectation(sha256="0" * 64,
                              vouched_by="test"), where="test")
    app = tmp_path / "entry" / "app"
    app.mkdir(parents=True)
    extraction = LayerExtraction(manifest=manifest, limits=Limits(), where="layer")
    with pytest.raises(RefusedBundleError, match=re.escape(message)):
        extraction(stream, app)
    written = sorted(p.relative_to(app).as_posix() for p in app.rglob("*"))
    assert written == ["bin", "bin/run", "bin/run-link", "lib", "lib/data.txt"]
    assert stream.furthest < total - 100_000  # the rest of the layer was never read
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "entry" / "evil.txt").exists()
