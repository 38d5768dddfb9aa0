"""Installing valid bundles: sources and who vouches for them, reuse, leftovers, names."""

from __future__ import annotations

import gc
import importlib
import json
import os
from pathlib import Path

import jsonschema
import pytest
from agent_factories import X86, make_bundle, sidecar_for

from builder.agent import InstallOptions, InstallResult, NetAgentTransport, Store, install
from builder.agent.errors import RefusedBundleError
from builder.agent.source import resolve_source, sidecar_location
from builder.agent.store import RECORD
from builder.agent.verify import entry_problems
from builder.catalog import write_index
from builder.catalog.codec import index_schema
from builder.errors import BuilderError, UsageError

T = NetAgentTransport()
# the module (builder.agent's lazy export ``install`` is the function of that name)
install_module = importlib.import_module("builder.agent.install")


def put(source: str, store: Store, *, index: str | None = None,
        sha256: str | None = None) -> InstallResult:
    resolved = resolve_source(source, index=index, sha256=sha256, target=X86, transport=T)
    return install(resolved, store, transport=T, options=InstallOptions())


def test_install_from_a_path_with_its_sidecar(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    store = Store(root=tmp_path / "store")
    result = put(str(bundle.archive), store)
    assert result.fresh
    assert result.path == tmp_path / "store" / "entries" / bundle.sha256
    assert (result.path / "service-def.json").is_file()
    record = json.loads((result.path / RECORD).read_text())
    assert record["name"] == "demo" and record["sha256"] == bundle.sha256
    assert record["source"] == str(bundle.archive)
    assert entry_problems(result.record, result.path) == []
    assert store.resolve("demo").sha256 == bundle.sha256
    assert store.resolve("demo@1.0").sha256 == bundle.sha256
    assert store.resolve(bundle.sha256[:12]).sha256 == bundle.sha256
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.parametrize("fails", [False, True])
def test_the_cyclic_collector_is_paused_for_the_extraction_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:
    bundle = make_bundle(tmp_path / "dist")
    real = install_module.extract_bundle
    during: list[bool] = []

    def watched(*args: object, **kwargs: object) -> object:
        during.append(gc.isenabled())
        if fails:
            raise RefusedBundleError("refused on purpose", where="here")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(install_module, "extract_bundle", watched)
    assert gc.isenabled()
    if fails:
        with pytest.raises(RefusedBundleError, match="on purpose"):
            put(str(bundle.archive), Store(root=tmp_path / "store"))
    else:
        assert put(str(bundle.archive), Store(root=tmp_path / "store")).fresh
    assert during == [False]
    assert gc.isenabled()


def test_second_install_reuses_the_entry(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    store = Store(root=tmp_path / "store")
    first = put(str(bundle.archive), store)
    marker = (first.path / RECORD).stat().st_ino
    again = put(str(bundle.archive), store)
    assert not again.fresh and again.path == first.path
    assert (again.path / RECORD).stat().st_ino == marker


def test_install_with_sha256_and_no_sidecar(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist", service_def=False)
    bundle.sidecar.unlink()
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError, match="no sha256 to check the archive against"):
        put(str(bundle.archive), store)
    assert not (store.entries_dir.exists() and any(store.entries_dir.iterdir()))
    result = put(str(bundle.archive), store, sha256=bundle.sha256.upper())
    assert result.fresh and not result.record.service_def


def test_sha256_and_sidecar_must_agree(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    with pytest.raises(RefusedBundleError, match="disagrees with the sidecar"):
        put(str(bundle.archive), Store(root=tmp_path / "store"), sha256="a" * 64)


def test_file_url_and_bad_inputs(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    store = Store(root=tmp_path / "store")
    assert put(bundle.archive.as_uri(), store).fresh
    with pytest.raises(BuilderError, match="no such bundle file"):
        put(str(tmp_path / "missing.tar.zst"), store)
    with pytest.raises(UsageError, match="say which catalog with --index"):
        put("demo", store)
    with pytest.raises(UsageError, match="64 hex digits"):
        put(str(bundle.archive), store, sha256="abc")
    with pytest.raises(UsageError, match="not a path, URL or NAME"):
        put("Not A Name", store, index=str(tmp_path))


def test_sidecar_location() -> None:
    assert sidecar_location("/d/x-1.tar.zst") == "/d/x-1.json"
    assert sidecar_location("http://h/d/x.tar.zst?a=1") == "http://h/d/x.json?a=1"
    assert sidecar_location("http://h/d/x.tgz") is None


def test_install_by_name_through_a_catalog(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    old = make_bundle(dist, version="1.0")
    new = make_bundle(dist, version="1.10")
    make_bundle(dist, version="9.0", overrides={"target": "aarch64-unknown-linux-gnu",
                                                "arch": "aarch64"})
    index, catalog = write_index(dist)
    jsonschema.validate(json.loads(index.read_text()), index_schema())
    store = Store(root=tmp_path / "store")
    assert put("demo", store, index=str(dist)).record.sha256 == new.sha256  # 1.10 > 1.0
    assert put("demo@1.0", store, index=str(index)).record.sha256 == old.sha256
    assert store.resolve("demo").version == "1.0"  # the name means the last one installed
    with pytest.raises(BuilderError, match=r"no demo version 3\.0 for x86_64") as err:
        put("demo@3.0", store, index=str(dist))
    assert "versions available: 1.0, 1.10" in str(err.value)
    with pytest.raises(BuilderError, match="no bundle named 'other'"):
        put("other", store, index=str(dist))
    assert len(catalog.entries) == 3


def test_catalog_sha256_is_checked_before_opening(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    bundle = make_bundle(dist)
    write_index(dist)
    bundle.archive.write_bytes(bundle.archive.read_bytes()[:-1] + b"\0")  # same size, new bytes
    with pytest.raises(BuilderError, match="sha256 mismatch"):
        put("demo", Store(root=tmp_path / "store"), index=str(dist))


def test_leftovers_of_killed_runs_are_removed(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    other = "b" * 64
    store = Store(root=tmp_path / "store")
    store.ensure()
    # a work dir and a trash dir as a killed install/gc leaves them, and a half entry
    (store.tmp_dir / f"{bundle.sha256}.999.dead" / "entry" / "app").mkdir(parents=True)
    (store.tmp_dir / f"evict.{other}.dead" / "app").mkdir(parents=True)
    (store.entries_dir / bundle.sha256 / "app").mkdir(parents=True)  # no .complete
    result = put(str(bundle.archive), store)
    assert result.fresh
    assert entry_problems(result.record, result.path) == []
    assert list(store.tmp_dir.iterdir()) == []


def test_busy_leftovers_of_another_entry_are_kept(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    other = "c" * 64
    store = Store(root=tmp_path / "store")
    store.ensure()
    busy = store.tmp_dir / f"{other}.1.live"
    busy.mkdir()
    with store.lock(other):  # a live agent installing `other`
        put(str(bundle.archive), store)
        assert busy.exists()
    assert store.discard_all_leftovers() == 1
    assert not busy.exists()


def test_verify_recounts_an_entry_without_a_record(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist", record=False)
    store = Store(root=tmp_path / "store")
    result = put(str(bundle.archive), store)
    (result.path / "app" / "lib" / "data.txt").write_bytes(b"changed, and longer\n")
    os.symlink("/etc", result.path / "app" / "etc")
    problems = entry_problems(result.record, result.path)
    assert any("symlink leaves app/" in p for p in problems)
    assert any("the record says 2 files and 30 bytes" in p for p in problems)


def test_sidecar_that_is_not_json_is_refused(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "dist")
    bundle.sidecar.write_text("{")
    with pytest.raises(RefusedBundleError, match="unreadable sidecar"):
        put(str(bundle.archive), Store(root=tmp_path / "store"))
    sidecar_for(bundle.archive, bundle.manifest, sha256="not hex")
    with pytest.raises(RefusedBundleError, match="unreadable sidecar"):
        put(str(bundle.archive), Store(root=tmp_path / "store"))
