"""The hostile corpus: every archive is refused with a clear message, nothing is written outside
the store's temporary directory, and the store holds no entry afterwards."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_factories import (
    DATA,
    RUN_SCRIPT,
    M,
    base_members,
    canonical,
    dir_,
    link,
    make_bundle,
    manifest_dict,
    manifest_member,
    raw_bundle,
    sha256_of,
    sidecar_for,
    tar_bytes,
)

from builder.agent import InstallOptions, Limits, NetAgentTransport, Store, install
from builder.agent.source import resolve_source
from builder.catalog import write_index
from builder.errors import BuilderError

# every extraction here twice: the C batch writer and the Python writer (conftest.py)
pytestmark = pytest.mark.usefixtures("writer_kind")


ESCAPE = "../../../../outside-agent-test"  # from <store>/tmp/<work>/entry/ up to tmp_path
MiB = 1 << 20


@dataclass(frozen=True)
class Case:
    id: str
    message: str  # part of the error message
    build: Callable[[Path], tuple[Path, str | None]]  # dir -> (archive, --sha256 or None)


def members(*extra: M, manifest: dict[str, object] | None = None, first: bool = True
            ) -> list[M]:
    head = [manifest_member(manifest or manifest_dict())]
    return [*head, *base_members(), *extra] if first else [*base_members(), *head, *extra]


def archive_of(member_list: list[M] | bytes, *, fmt: int = tarfile.PAX_FORMAT,
               compress: bool = True) -> Callable[[Path], tuple[Path, str | None]]:
    def build(where: Path) -> tuple[Path, str | None]:
        path, sha = raw_bundle(where / "bad.tar.zst", member_list, fmt=fmt, compress=compress)
        return path, sha
    return build


def with_sidecar(member_list: list[M], sidecar_manifest: dict[str, object], *,
                 size: int | None = None) -> Callable[[Path], tuple[Path, str | None]]:
    def build(where: Path) -> tuple[Path, str | None]:
        path, _ = raw_bundle(where / "bad.tar.zst", member_list)
        sidecar_for(path, sidecar_manifest, size=size)
        return path, None
    return build


def truncated(keep: Callable[[int], int], *, compress_after: bool
              ) -> Callable[[Path], tuple[Path, str | None]]:
    """A valid bundle cut short (the sha256 given is the cut file's: only extraction can tell)."""
    def build(where: Path) -> tuple[Path, str | None]:
        big = os.urandom(256 << 10)
        manifest = manifest_dict(files=3, unpacked_bytes=len(RUN_SCRIPT) + len(DATA) + len(big))
        raw = tar_bytes(members(M("app/lib/big.bin", big), manifest=manifest))
        if compress_after:
            import zstandard
            data = zstandard.ZstdCompressor().compress(raw)
            path, _ = raw_bundle(where / "bad.tar.zst", data[: keep(len(data))], compress=False)
        else:
            path, _ = raw_bundle(where / "bad.tar.zst", raw[: keep(len(raw))])
        return path, sha256_of(path)
    return build


def wrong_sha(where: Path) -> tuple[Path, str | None]:
    good = make_bundle(where)
    good.sidecar.unlink()
    return good.archive, "f" * 64


def catalog_lies(where: Path) -> tuple[Path, str | None]:
    good = make_bundle(where)
    good.sidecar.unlink()
    index, _ = write_index(where)
    index.write_text(index.read_text().replace('"version": "1.0"', '"version": "2.0"'))
    return index, None


def sidecar_wrong_size(where: Path) -> tuple[Path, str | None]:
    good = make_bundle(where)
    sidecar_for(good.archive, good.manifest, size=good.size + 1)
    return good.archive, None


LONG = "app/" + "x" * 120 + "/../../../" + ESCAPE

CASES = [
    Case("absolute-path", "absolute path", archive_of(members(M("/tmp/agent-evil", b"x")))),
    Case("dotdot-top", "leaving the destination", archive_of(members(M("../evil", b"x")))),
    Case("dotdot-inner", "leaving the destination",
         archive_of(members(M("app/../../evil", b"x")))),
    Case("dotdot-deep", "leaving the destination",
         archive_of(members(M(f"app/a/b/{ESCAPE}", b"x")))),
    Case("dot-slash-dotdot", "leaving the destination",
         archive_of(members(M("./../evil", b"x")))),
    Case("pax-path-traversal", "leaving the destination",
         archive_of(members(M("app/harmless", b"x", pax={"path": ESCAPE})))),
    Case("gnu-longname-traversal", "leaving the destination",
         archive_of(members(M(LONG, b"x")), fmt=tarfile.GNU_FORMAT)),
    Case("symlink-absolute", "symlink to an absolute path",
         archive_of(members(link("app/passwd", "/etc/passwd")))),
    Case("symlink-escape", "symlink leaving app/",
         archive_of(members(link("app/out", ESCAPE)))),
    Case("symlink-to-manifest", "symlink leaving app/",
         archive_of(members(link("app/m", "../manifest.json")))),
    Case("symlink-to-parent", "symlink leaving app/", archive_of(members(link("app/up", "..")))),
    Case("write-through-symlink", "through the symlink",
         archive_of(members(link("app/here", "."), M("app/here/f", b"x")))),
    Case("symlink-chain-escape", "resolving outside app/ through other links",
         archive_of(members(link("app/s2", "."), link("app/s1", "s2/..")))),
    Case("app-is-a-symlink", "symlink outside app/",
         archive_of([manifest_member(manifest_dict()), link("app", "/")])),
    Case("hardlink-outside", "hard link refused",
         archive_of(members(M("app/h", type=tarfile.LNKTYPE, linkname="/etc/passwd")))),
    Case("hardlink-inside", "hard link refused",
         archive_of(members(M("app/h", type=tarfile.LNKTYPE, linkname="app/bin/run")))),
    Case("char-device", "device or fifo refused",
         archive_of(members(M("app/null", type=tarfile.CHRTYPE)))),
    Case("block-device", "device or fifo refused",
         archive_of(members(M("app/sda", type=tarfile.BLKTYPE)))),
    Case("fifo", "device or fifo refused", archive_of(members(M("app/p", type=tarfile.FIFOTYPE)))),
    Case("setuid", "set-uid/set-gid bit refused",
         archive_of(members(M("app/bin/su", b"x", mode=0o4755)))),
    Case("truncated-tar", "truncated or corrupt",
         truncated(lambda n: n // 2, compress_after=False)),
    Case("truncated-zstd", "truncated or corrupt",
         truncated(lambda n: n - 200, compress_after=True)),
    Case("not-zstd", "truncated or corrupt",
         archive_of(b"this is not a zstd frame\n" * 100, compress=False)),
    Case("empty-file", "truncated or corrupt", archive_of(b"", compress=False)),
    Case("wrong-sha256", "sha256 mismatch", wrong_sha),
    Case("sidecar-wrong-size", "bytes, the sidecar", sidecar_wrong_size),
    Case("size-claim-100GB", "claims 100000000000 bytes",
         archive_of(members(M("app/bomb", b"x" * 10, claimed_size=100 * 10**9)))),
    Case("zero-bomb", "claims 67108864 bytes",
         archive_of(members(M("app/zeros", b"\0" * (64 * MiB))))),
    Case("manifest-claims-terabytes", "above the limit",
         archive_of(members(manifest=manifest_dict(unpacked_bytes=10**13)))),
    Case("more-files-than-declared", "more files than the 2 manifest.json declares",
         archive_of(members(*(M(f"app/f{i}", b"") for i in range(5))))),
    Case("manifest-lies-files", "declares 10 files and 30 bytes, the archive holds 2 files",
         archive_of(members(manifest=manifest_dict(files=10)))),
    Case("manifest-lies-bytes-up", "declares 2 files and 4000 bytes",
         archive_of(members(manifest=manifest_dict(unpacked_bytes=4000)))),
    Case("manifest-lies-bytes-down", "claims 20 bytes, more than the 10 left",
         archive_of(members(manifest=manifest_dict(unpacked_bytes=10)))),
    Case("manifest-other-name-than-sidecar",
         "name is 'evil', not 'demo'; also differs in final_root",
         with_sidecar(members(manifest=manifest_dict(name="evil")), manifest_dict())),
    Case("manifest-other-version-than-catalog", "version is '1.0', not '2.0'", catalog_lies),
    Case("manifest-final-root", "contradicts itself: final_root is '/opt/apps/other'",
         archive_of(members(manifest=manifest_dict(final_root="/opt/apps/other")))),
    Case("manifest-not-first", "the first member is 'app', not manifest.json",
         archive_of(members(first=False))),
    Case("no-manifest", "the first member is 'app'", archive_of(base_members())),
    Case("manifest-not-json", "manifest.json is not valid JSON",
         archive_of([manifest_member(b"{not json"), *base_members()])),
    Case("manifest-schema", "format_version: must be 1",
         archive_of(members(manifest=manifest_dict(format_version=2)))),
    Case("manifest-with-archive-key", "'archive' key",
         archive_of(members(manifest=manifest_dict(archive={"filename": "x", "sha256": "0" * 64,
                                                            "size": 1})))),
    Case("manifest-huge", "manifest.json claims",
         archive_of([M("manifest.json", b" " * (5 * MiB)), *base_members()])),
    Case("service-def-huge", "service-def.json claims",
         archive_of(members(M("service-def.json", b" " * (5 * MiB))))),
    Case("duplicate-member", "duplicate member",
         archive_of(members(M("app/bin/run", b"#!/bin/sh\nevil\n")))),
    Case("top-level-dir", "unexpected member outside app/",
         archive_of(members(dir_("etc"), M("etc/passwd", b"x")))),
    Case("top-level-file", "unexpected member outside app/",
         archive_of(members(M("evil.sh", b"x")))),
    Case("service-def-symlink", "service-def.json is not a regular file",
         archive_of(members(link("service-def.json", "app/bin/run")))),
    Case("member-below-file", "below the file",
         archive_of(members(M("app/lib/data.txt/x", b"x")))),
    Case("app-is-a-file", "no app/ directory",
         archive_of([manifest_member(manifest_dict(files=1, unpacked_bytes=3)),
                     M("app", b"abc")])),
    Case("no-app", "no app/ directory",
         archive_of([manifest_member(manifest_dict(files=0, unpacked_bytes=0))])),
]


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every path below root (but skip) with its size and mtime."""
    found = {}
    for path in root.rglob("*"):
        if path == skip or skip in path.parents:
            continue
        st = path.lstat()
        found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_archive_is_refused(case: Case, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    archive, sha = case.build(inputs)
    store = Store(root=tmp_path / "store")
    store.ensure()
    before = snapshot(tmp_path, skip=tmp_path / "store")
    transport = NetAgentTransport()
    with pytest.raises(BuilderError) as raised:
        if archive.name == "index.json":
            source = resolve_source("demo", index=str(archive), sha256=None,
                                    target="x86_64-unknown-linux-gnu", transport=transport)
        else:
            source = resolve_source(str(archive), index=None, sha256=sha,
                                    target="x86_64-unknown-linux-gnu", transport=transport)
        install(source, store, transport=transport,
                options=InstallOptions(limits=Limits(max_unpacked_bytes=1 << 40)))
    message = str(raised.value)
    assert case.message in message, message
    assert "Traceback" not in message
    # nothing outside the store changed, and the store has no entry and no leftovers
    assert snapshot(tmp_path, skip=tmp_path / "store") == before
    assert not (tmp_path / "outside-agent-test").exists()
    assert not Path("/tmp/agent-evil").exists()
    assert list(store.entries_dir.iterdir()) == []
    assert list(store.tmp_dir.iterdir()) == []
    for sub in ("pins", "leases", "uses", "names"):
        assert list((store.root / sub).iterdir()) == [], sub


def test_the_valid_twin_of_the_corpus_installs(tmp_path: Path) -> None:
    """The members the corpus starts from are a bundle the agent accepts."""
    archive, sha = raw_bundle(tmp_path / "good.tar.zst", members())
    store = Store(root=tmp_path / "store")
    transport = NetAgentTransport()
    source = resolve_source(str(archive), index=None, sha256=sha, target="x", transport=transport)
    result = install(source, store, transport=transport, options=InstallOptions())
    app = result.path / "app"
    assert (app / "bin/run").read_bytes() == RUN_SCRIPT
    assert (app / "lib/data.txt").read_bytes() == DATA
    assert (app / "bin/run-link").readlink() == Path("run")
    assert (app / "bin/run").stat().st_mode & 0o777 == 0o755
    assert canonical(manifest_dict()) == (result.path / "manifest.json").read_bytes()


def test_an_archive_of_several_zstd_frames_installs(tmp_path: Path) -> None:
    """zstd -T0 or pzstd may write several frames; they are one stream."""
    import zstandard

    raw = tar_bytes(members())
    half = len(raw) // 2
    compressor = zstandard.ZstdCompressor()
    archive, sha = raw_bundle(tmp_path / "frames.tar.zst",
                              compressor.compress(raw[:half]) + compressor.compress(raw[half:]),
                              compress=False)
    transport = NetAgentTransport()
    source = resolve_source(str(archive), index=None, sha256=sha, target="x", transport=transport)
    result = install(source, Store(root=tmp_path / "store"), transport=transport,
                     options=InstallOptions())
    assert (result.path / "app/lib/data.txt").read_bytes() == DATA
