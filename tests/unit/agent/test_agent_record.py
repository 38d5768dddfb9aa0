"""The bundle's RECORD end to end on fabricated bundles: written at build, checked while an
install extracts, checked by ``agent verify`` (each kind of damage named), and an install over a
damaged entry repairs it by swapping a whole new entry in."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_factories import (
    DATA,
    RUN_SCRIPT,
    X86,
    M,
    base_members,
    make_bundle,
    manifest_dict,
    manifest_member,
    raw_bundle,
    sidecar_for,
)

from builder.agent import InstallOptions, InstallResult, NetAgentTransport, Store, install
from builder.agent.errors import RefusedBundleError
from builder.agent.extract import Limits, extract_bundle
from builder.agent.manifest_check import Expectation, check_manifest
from builder.agent.source import resolve_source
from builder.agent.store import _exchange
from builder.agent.verify import entry_differences
from builder.bundle import record as record_module
from builder.bundle.record import RECORD_FILE, Item, compare, parse, render, scan, write_record
from builder.cli.main import main
from builder.errors import BuilderError

T = NetAgentTransport()


def put(source: str, store: Store) -> InstallResult:
    resolved = resolve_source(source, index=None, sha256=None, target=X86, transport=T)
    return install(resolved, store, transport=T, options=InstallOptions())


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Store, InstallResult, str]:
    bundle = make_bundle(tmp_path / "dist", extra_files=3)
    store = Store(root=tmp_path / "store")
    return store, put(str(bundle.archive), store), str(bundle.archive)


# -- the RECORD itself ------------------------------------------------------------------------


def test_record_lists_every_path_with_normalised_modes_and_is_deterministic(
        tmp_path: Path) -> None:
    root = tmp_path / "b"
    (root / "app" / "bin").mkdir(parents=True)
    (root / "app" / "bin" / "run").write_bytes(RUN_SCRIPT)
    (root / "app" / "bin" / "run").chmod(0o700)  # archived as 0755
    (root / "app" / "data").write_bytes(DATA)
    (root / "app" / "data").chmod(0o600)  # archived as 0644
    (root / "app" / "bin" / "link").symlink_to("run")
    (root / "manifest.json").write_text("{}")
    sha, size, entries = write_record(root)
    raw = (root / RECORD_FILE).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == sha and len(raw) == size and entries == 5
    items = parse(raw, where="test")
    assert items == {
        "app": Item("d", 0o755), "app/bin": Item("d", 0o755),
        "app/bin/link": Item("l", digest="run"),
        "app/bin/run": Item("f", 0o755, len(RUN_SCRIPT), hashlib.sha256(RUN_SCRIPT).hexdigest()),
        "app/data": Item("f", 0o644, len(DATA), hashlib.sha256(DATA).hexdigest())}
    assert render(items) == raw  # sorted, canonical: the same tree gives the same bytes
    assert "manifest.json" not in raw.decode()


@pytest.mark.parametrize("line", [
    b'["../etc/passwd","f","0644",1,"00"]', b'["manifest.json","f","0644",1,"00"]',
    b'["app/x","f","0644"]', b'["app/x","q","0644"]', b"not json"])
def test_a_malformed_record_is_refused(line: bytes) -> None:
    with pytest.raises(Exception, match="unreadable RECORD"):
        parse(b'["app","d","0755"]\n' + line + b"\n", where="test")


def test_compare_names_each_kind_of_difference() -> None:
    want = {"a": Item("f", 0o644, 1, "x"), "b": Item("d", 0o755), "c": Item("l", digest="t"),
            "d": Item("f", 0o644, 1, "x"), "e": Item("f", 0o755, 1, "x")}
    have = {"a": Item("f", 0o644, 1, "y"), "b": Item("d", 0o000), "c": Item("l", digest="u"),
            "e": Item("f", 0o4777, 1, "x"), "z": Item("f", 0o644, 1, "x"),
            "d": Item("d", 0o755)}
    assert [(d.path, d.kind) for d in compare(want, have)] == [
        ("a", "content"), ("b", "mode"), ("c", "target"), ("d", "type"), ("e", "mode"),
        ("z", "added")]
    assert next((d.path, d.kind) for d in compare(want, {})) == ("a", "removed")


# -- install checks the RECORD while extracting ---------------------------------------------


def _lying_bundle(tmp_path: Path, record: bytes, *, named_sha: str | None = None) -> Path:
    members = [*base_members(), M(RECORD_FILE, record)]
    manifest = manifest_dict(files=3, unpacked_bytes=len(RUN_SCRIPT) + len(DATA) + len(record),
                             record={"file": RECORD_FILE, "entries": 5,
                                     "sha256": named_sha or hashlib.sha256(record).hexdigest()})
    archive, _ = raw_bundle(tmp_path / "lie-1.0.tar.zst", [manifest_member(manifest), *members])
    sidecar_for(archive, manifest)
    return archive


def _true_record() -> dict[str, Item]:
    return {"app": Item("d", 0o755), "app/bin": Item("d", 0o755),
            "app/bin/run": Item("f", 0o755, len(RUN_SCRIPT),
                                hashlib.sha256(RUN_SCRIPT).hexdigest()),
            "app/bin/run-link": Item("l", digest="run"), "app/lib": Item("d", 0o755),
            "app/lib/data.txt": Item("f", 0o644, len(DATA), hashlib.sha256(DATA).hexdigest())}


def test_install_accepts_a_record_that_tells_the_truth(tmp_path: Path) -> None:
    archive = _lying_bundle(tmp_path, render(_true_record()))
    result = put(str(archive), Store(root=tmp_path / "store"))
    assert entry_differences(result.record, result.path) == []


@pytest.mark.parametrize(("change", "named"), [
    (lambda r: r.update({"app/lib/data.txt": Item("f", 0o644, len(DATA), "0" * 64)}),
     "app/lib/data.txt: content differs"),
    (lambda r: r.update({"app/bin/run": Item("f", 0o644, len(RUN_SCRIPT),
                                             hashlib.sha256(RUN_SCRIPT).hexdigest())}),
     "app/bin/run: mode 0755, the RECORD says 0644"),
    (lambda r: r.pop("app/lib/data.txt"), "app/lib/data.txt: a file the RECORD does not list"),
    (lambda r: r.update({"app/extra": Item("d", 0o755)}), "app/extra: missing"),
    (lambda r: r.update({"app/bin/run-link": Item("l", digest="elsewhere")}),
     "app/bin/run-link: symlink to 'run'"),
])
def test_install_refuses_a_record_that_lies(tmp_path: Path,
                                            change: Callable[[dict[str, Item]], object],
                                            named: str) -> None:
    record = _true_record()
    change(record)
    archive = _lying_bundle(tmp_path, render(record))
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError, match="RECORD does not describe") as caught:
        put(str(archive), store)
    assert named in caught.value.what
    assert list((store.root / "entries").iterdir()) == []


@pytest.mark.parametrize("record", [b"", b"not a RECORD\n"], ids=["true", "garbage"])
def test_install_refuses_a_record_other_than_the_one_named(tmp_path: Path,
                                                           record: bytes) -> None:
    """Whatever its bytes say (even unparsable): a RECORD that is not the one manifest.json
    names is refused as that, and nothing in it is trusted meanwhile."""
    raw = record or render(_true_record())
    archive = _lying_bundle(tmp_path, raw, named_sha="a" * 64)
    store = Store(root=tmp_path / "store")
    with pytest.raises(RefusedBundleError) as caught:
        put(str(archive), store)
    assert caught.value.what == (f"{RECORD_FILE} is not the one manifest.json names (sha256 "
                                 f"{hashlib.sha256(raw).hexdigest()}, expected {'a' * 64})")
    assert caught.value.where == str(archive)
    assert list((store.root / "entries").iterdir()) == []


def _extract_without_objects(tmp_path: Path, archive: Path) -> None:
    """The archive extracted as an OCI pull or an agent without objects does (the RECORD read
    at the end, not while extracting)."""
    with archive.open("rb") as raw:
        extract_bundle(raw, tmp_path / "work", sha256=hashlib.sha256(archive.read_bytes())
                       .hexdigest(), size=None, on_manifest=lambda b: check_manifest(
                           b, Expectation(sha256="0" * 64, vouched_by="t"), where="t"),
                       limits=Limits(), where="W")


def _both_ways(tmp_path: Path, archive: Path) -> list[RefusedBundleError | BuilderError]:
    """The refusals of an install into a store (objects: the RECORD read while extracting) and
    of an extraction without objects."""
    errors = []
    with pytest.raises(BuilderError) as installed:
        put(str(archive), Store(root=tmp_path / "store"))
    errors.append(installed.value)
    with pytest.raises(BuilderError) as extracted:
        _extract_without_objects(tmp_path, archive)
    errors.append(extracted.value)
    return errors


@pytest.mark.parametrize("count", [1, 10, 11, 12])
def test_the_differences_shown_are_the_first_ten_and_a_count(tmp_path: Path,
                                                             count: int) -> None:
    record = _true_record()
    record.update({f"app/m{i:02d}": Item("d", 0o755) for i in range(count)})
    archive = _lying_bundle(tmp_path, render(record))
    shown = "".join(f"\n  app/m{i:02d}: missing (the RECORD lists it)"
                    for i in range(min(count, 10)))
    more = f"\n  ... and {count - 10} more" if count > 10 else ""
    for error, where in zip(_both_ways(tmp_path, archive), [str(archive), "W"], strict=True):
        assert isinstance(error, RefusedBundleError)
        assert error.what == (f"the bundle's RECORD does not describe its contents ({count} "
                              f"difference(s)):{shown}{more}")
        assert error.where == where


@pytest.mark.parametrize("member", [None, M(RECORD_FILE, type=tarfile.DIRTYPE)],
                         ids=["absent", "a-directory"])
def test_a_named_record_the_bundle_lacks_is_refused(tmp_path: Path, member: M | None) -> None:
    manifest = manifest_dict(files=2, record={"file": RECORD_FILE, "entries": 5,
                                              "sha256": "a" * 64})
    archive, _ = raw_bundle(tmp_path / "lie-1.0.tar.zst", [
        manifest_member(manifest), *base_members(), *([member] if member else [])])
    sidecar_for(archive, manifest)
    for error, where in zip(_both_ways(tmp_path, archive), [str(archive), "W"], strict=True):
        assert isinstance(error, RefusedBundleError)
        assert (error.what, error.where) == (
            "manifest.json names app/.builder-record.jsonl, the bundle has none", where)


def test_the_named_record_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    archive = _lying_bundle(tmp_path, b"not a RECORD\n")
    for error, where in zip(_both_ways(tmp_path, archive), [str(archive), "W"], strict=True):
        assert error.what.startswith("unreadable RECORD: "), error.what
        assert error.where == where


def test_directories_made_for_their_members_are_what_the_record_lists(tmp_path: Path) -> None:
    """app/ and app/lib/ not in the archive, made for the members below them: 0755
    directories, as the RECORD lists them (with objects and without)."""
    record = render(_true_record())
    manifest = manifest_dict(files=3, unpacked_bytes=len(RUN_SCRIPT) + len(DATA) + len(record),
                             record={"file": RECORD_FILE, "entries": 5,
                                     "sha256": hashlib.sha256(record).hexdigest()})
    implicit = [m for m in base_members() if m.name not in ("app", "app/lib")]
    archive, _ = raw_bundle(tmp_path / "implicit-1.0.tar.zst",
                            [manifest_member(manifest), M(RECORD_FILE, record), *implicit])
    sidecar_for(archive, manifest)
    result = put(str(archive), Store(root=tmp_path / "store"))
    assert entry_differences(result.record, result.path) == []
    _extract_without_objects(tmp_path, archive)
    assert (tmp_path / "work/app/lib").stat().st_mode & 0o7777 == 0o755


# -- verify -----------------------------------------------------------------------------------


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "byte flip": (lambda e: _flip_one_byte(e / "app/lib/data.txt"), "app/lib/data.txt",
                  "content"),
    "added file": (lambda e: (e / "app/lib/evil.py").write_text("import os\n"),
                   "app/lib/evil.py", "added"),
    "chmod 000": (lambda e: (e / "app/bin/run").chmod(0o000), "app/bin/run", "mode"),
    "chmod 4777": (lambda e: (e / "app/lib/data.txt").chmod(0o4777), "app/lib/data.txt",
                   "mode"),
    "directory chmod": (lambda e: (e / "app/lib").chmod(0o777), "app/lib", "mode"),
    "removed file": (lambda e: (e / "app/bin/run").unlink(), "app/bin/run", "removed"),
    "retargeted link": (lambda e: (os.unlink(e / "app/bin/run-link"),
                                   os.symlink("../lib/data.txt", e / "app/bin/run-link")),
                        "app/bin/run-link", "target"),
    "file for a link": (lambda e: (os.unlink(e / "app/bin/run-link"),
                                   (e / "app/bin/run-link").write_bytes(RUN_SCRIPT)),
                        "app/bin/run-link", "type"),
    "manifest edited": (lambda e: (e / "manifest.json").write_bytes(
        (e / "manifest.json").read_bytes().replace(b"fabricated", b"Fabricated")),
        "manifest.json", "content"),
    "record edited": (lambda e: (e / RECORD_FILE).write_bytes(
        (e / RECORD_FILE).read_bytes() + b'["app/lib/evil.py","f","0644",1,"00"]\n'),
        RECORD_FILE, "content"),
    "service-def edited": (lambda e: _flip_one_byte(e / "service-def.json"), "service-def.json",
                           "content"),
}


@pytest.mark.parametrize("quick", [False, True], ids=["every-file", "quick"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_verify_names_each_kind_of_damage(installed: tuple[Store, InstallResult, str],
                                          damage: str, quick: bool) -> None:
    _store, result, _ = installed
    assert entry_differences(result.record, result.path, quick=quick) == []
    apply, path, kind = DAMAGE[damage]
    apply(result.path)
    found = [(d.path, d.kind) for d in entry_differences(result.record, result.path, quick=quick)]
    assert (path, kind) in found, found


def test_quick_reads_only_files_changed_since_the_install(
        installed: tuple[Store, InstallResult, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _store, result, _ = installed
    read: list[str] = []
    real = record_module.hash_file

    def counting(path: Path) -> str:
        read.append(path.name)
        return real(path)

    monkeypatch.setattr(record_module, "hash_file", counting)
    complete = result.path / ".complete"
    published = complete.stat().st_mtime_ns
    later = published + 10**9
    os.utime(complete, ns=(later, later))  # as if published a second after the extraction
    assert entry_differences(result.record, result.path, quick=True) == []
    assert read == []
    os.utime(complete, ns=(published, published))
    _flip_one_byte(result.path / "app/lib/data.txt")  # its ctime: now, after the publication
    assert [(d.path, d.kind) for d in entry_differences(result.record, result.path,
                                                         quick=True)] == [
        ("app/lib/data.txt", "content")]
    assert "data.txt" in read and len(read) < result.record.files - 1
    read.clear()
    entry_differences(result.record, result.path)
    # every file: app/ but the RECORD (read on its own), and service-def.json
    assert len(read) == result.record.files


def test_verify_writes_nothing(installed: tuple[Store, InstallResult, str]) -> None:
    store, result, _ = installed
    _flip_one_byte(result.path / "app/lib/data.txt")

    def stamps() -> dict[str, tuple[int, int]]:
        return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size)
                for p in sorted(store.root.rglob("*"))}

    before = stamps()
    assert entry_differences(result.record, result.path)
    assert stamps() == before


def test_verify_and_repair_through_the_cli(installed: tuple[Store, InstallResult, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    store, result, archive = installed
    entry = result.path
    for apply, _path, _kind in DAMAGE.values():
        if _path not in (RECORD_FILE, "manifest.json"):
            apply(entry)
    assert main(["agent", "verify", "demo", "--store", str(store.root)]) == 1
    out, err = capsys.readouterr()
    assert "demo: app/lib/data.txt: content differs" in out
    assert "demo: app/lib/evil.py: a file the RECORD does not list" in out
    assert "`builder agent install` of the same bundle repairs" in err
    assert main(["agent", "verify", "demo", "--store", str(store.root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {"path": "app/bin/run", "kind": "removed",
            "detail": "missing (the RECORD lists it)"} in report["differences"]

    old_inode = entry.stat().st_ino
    assert main(["agent", "install", archive, "--store", str(store.root), "--json"]) == 0
    captured = capsys.readouterr()
    assert "repaired demo 1.0" in captured.err and "app/lib/evil.py" in captured.err
    repaired = json.loads(captured.out)["repaired"]
    assert {d["path"] for d in repaired} >= {"app/lib/data.txt", "app/bin/run", "app/lib"}
    assert entry.stat().st_ino != old_inode  # a new directory swapped in, not patched in place
    assert main(["agent", "verify", "demo", "--store", str(store.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "name": "demo", "version": "1.0", "sha256": result.record.sha256, "path": str(entry),
        "ok": True, "differences": [], "elf_problems": []}
    assert list(store.tmp_dir.iterdir()) == []  # the damaged tree is gone


def test_an_intact_entry_is_reused_not_repaired(
        installed: tuple[Store, InstallResult, str]) -> None:
    store, result, archive = installed
    again = put(archive, store)
    assert not again.fresh and again.repaired == ()
    assert again.path.stat().st_ino == result.path.stat().st_ino


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from-a").touch()
    (tmp_path / "b").mkdir()
    if not _exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert (tmp_path / "b" / "from-a").exists() and not (tmp_path / "a" / "from-a").exists()


def test_scan_reports_an_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x").write_bytes(b"x")
    (tmp_path / "app" / "x").chmod(0)
    _found, unreadable = scan(tmp_path)
    assert [d.kind for d in unreadable] == ["unreadable"]
