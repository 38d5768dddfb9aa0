"""LRU garbage collection under a byte budget; pins and leases; the names view after eviction."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from agent_factories import X86, make_bundle

from builder.agent import InstallOptions, NetAgentTransport, Store, collect_garbage, install
from builder.agent.errors import StoreError
from builder.agent.gc import plan_gc
from builder.agent.source import resolve_source
from builder.agent.store import EntryRecord, EntryState

T = NetAgentTransport()


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Processes:
    """A fake process table: pid -> start time."""

    running: dict[int, int] = field(default_factory=dict)

    def start_time(self, pid: int) -> int | None:
        return self.running.get(pid)


def state(sha: str, size: int, used: float, *, pinned: bool = False,
          leases: tuple[int, ...] = ()) -> EntryState:
    record = EntryRecord(sha256=sha * 64, name=f"app{sha}", version="1", target=X86,
                         arch="x86_64", libc="gnu", input_digest="sha256:" + "0" * 64,
                         glibc_floor=None, files=1, unpacked_bytes=size, disk_bytes=size,
                         service_def=False, installed_at=0.0, source="x")
    return EntryState(record=record, path=Path("/s") / sha, last_use=used, pinned=pinned,
                      leases=leases)


def du(*entries: Path) -> int:
    """Bytes on disk of the entries together, each inode once (``du`` semantics; the entries'
    record files left out, as the store leaves them out of ``disk_bytes``)."""
    seen: dict[tuple[int, int], int] = {}
    for entry in entries:
        for path in [entry, *entry.rglob("*")]:
            if path.name != ".complete":
                st = path.lstat()
                seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


def test_plan_evicts_least_recently_used_first_until_it_fits() -> None:
    states = [state("a", 100, used=3), state("b", 100, used=1), state("c", 100, used=2)]
    plan = plan_gc(states, max_bytes=150)
    assert [s.record.sha256[0] for s in plan.evict] == ["b", "c"]
    assert plan.after_bytes == 100 and plan.fits
    assert plan_gc(states, max_bytes=300).evict == ()


def test_plan_never_evicts_pinned_or_leased() -> None:
    states = [state("a", 100, used=1, pinned=True), state("b", 100, used=2, leases=(42,)),
              state("c", 100, used=3)]
    plan = plan_gc(states, max_bytes=0)
    assert [s.record.sha256[0] for s in plan.evict] == ["c"]
    assert not plan.fits and plan.after_bytes == 200
    assert {s.record.sha256[0] for s in plan.protected} == {"a", "b"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(root=tmp_path / "store", clock=Clock(), processes=Processes())


def put(store: Store, archive: Path) -> EntryRecord:
    source = resolve_source(str(archive), index=None, sha256=None, target=X86, transport=T)
    return install(source, store, transport=T, options=InstallOptions()).record


def three(store: Store, tmp_path: Path) -> list[EntryRecord]:
    clock = store.clock
    assert isinstance(clock, Clock)
    records = []
    for i, name in enumerate(("one", "two", "three")):
        clock.now = 1_000.0 + i
        records.append(put(store, make_bundle(tmp_path / "dist", name=name,
                                              extra_files=5 * (i + 1)).archive))
    return records


def test_gc_evicts_lru_and_reports_what_it_freed(store: Store, tmp_path: Path) -> None:
    one, two, three_ = three(store, tmp_path)
    store.clock.now = 2_000.0  # type: ignore[attr-defined]
    put(store, make_bundle(tmp_path / "dist", name="one", extra_files=5).archive)  # one is used
    everything = du(*(store.entry_path(r.sha256) for r in (one, two, three_)))
    budget = du(store.entry_path(one.sha256), store.entry_path(three_.sha256))
    report = collect_garbage(store, budget)
    assert [s.record.name for s in report.evicted] == ["two"]
    # the files two shares with one or three stay: only its own bytes are freed
    assert report.plan.total_bytes == everything
    assert report.freed_bytes == everything - budget < two.disk_bytes and report.fits
    assert not store.entry_path(two.sha256).exists()
    assert {r.name for r in store.records()} == {"one", "three"}
    with pytest.raises(StoreError, match="no entry two in the store"):
        store.resolve("two")
    assert list(store.tmp_dir.iterdir()) == []


def test_dry_run_changes_nothing(store: Store, tmp_path: Path) -> None:
    records = three(store, tmp_path)
    report = collect_garbage(store, 0, dry_run=True)
    assert len(report.evicted) == 3 and report.dry_run
    assert len(store.records()) == len(records)


def test_pins_and_live_leases_protect(store: Store, tmp_path: Path) -> None:
    one, two, _three = three(store, tmp_path)
    processes = store.processes
    assert isinstance(processes, Processes)
    processes.running[4242] = 77
    store.pin(one.sha256)
    store.add_lease(two.sha256, 4242)
    report = collect_garbage(store, 0)
    assert [s.record.name for s in report.evicted] == ["three"]
    assert not report.fits
    assert {s.record.name for s in store.states() if s.pinned} == {"one"}
    assert [s.leases for s in store.states() if s.record.name == "two"] == [(4242,)]
    # the leaseholder ends (or its PID is reused by another process): the lease is gone
    processes.running[4242] = 78
    report = collect_garbage(store, 0)
    assert [s.record.name for s in report.evicted] == ["two"]
    assert store.unpin(one.sha256)
    assert [s.record.name for s in collect_garbage(store, 0).evicted] == ["one"]
    assert store.records() == ()


def test_a_busy_entry_is_skipped(store: Store, tmp_path: Path) -> None:
    one, _two, _three = three(store, tmp_path)
    with store.lock(one.sha256):
        report = collect_garbage(store, 0)
    assert [(s.record.name, why) for s, why in report.skipped] == [
        ("one", "busy (another agent holds its lock)")]
    assert store.record(one.sha256) is not None


def test_lease_needs_a_live_process(store: Store, tmp_path: Path) -> None:
    one = three(store, tmp_path)[0]
    with pytest.raises(StoreError, match="no running process 99"):
        store.add_lease(one.sha256, 99)


def test_name_falls_back_to_the_remaining_version(store: Store, tmp_path: Path) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    old = put(store, make_bundle(tmp_path / "dist", version="1.0").archive)
    clock.now += 10
    new = put(store, make_bundle(tmp_path / "dist", version="2.0").archive)
    assert store.resolve("demo").sha256 == new.sha256
    clock.now += 10
    store.touch(old.sha256)
    collect_garbage(store, old.disk_bytes)
    assert store.resolve("demo").sha256 == old.sha256


def test_the_real_process_table() -> None:
    import os
    import subprocess
    import sys

    from builder.agent.store import ProcTable

    table = ProcTable()
    assert isinstance(table.start_time(os.getpid()), int)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    assert table.start_time(int(child.stdout)) is None  # ended (and reaped)


# -- what happens between the plan and each entry's lock (another agent acts meanwhile) -------

@dataclass(frozen=True, kw_only=True)
class MeanwhileStore(Store):
    """A store where another agent acts on an entry right before gc takes its lock."""

    meanwhile: dict[str, str] = field(default_factory=dict)  # sha -> "pin" or "lease"

    def try_lock(self, key: str) -> contextlib.AbstractContextManager[None] | None:
        action = self.meanwhile.pop(key, None)
        if action == "pin":
            self.pin(key)
        elif action == "lease":
            self.add_lease(key, 4242)
            self.add_lease(key, 4343)
        return super().try_lock(key)


def meanwhile_store(tmp_path: Path) -> MeanwhileStore:
    return MeanwhileStore(root=tmp_path / "store", clock=Clock(),
                          processes=Processes(running={4242: 1, 4343: 2}))


def test_an_entry_pinned_after_the_plan_is_kept(tmp_path: Path) -> None:
    store = meanwhile_store(tmp_path)
    one, _two, _three = three(store, tmp_path)
    store.meanwhile[one.sha256] = "pin"
    report = collect_garbage(store, 0)
    assert [(s.record.name, why) for s, why in report.skipped] == [("one", "pinned meanwhile")]
    assert [s.record.name for s in report.evicted] == ["two", "three"]
    assert store.record(one.sha256) is not None
    assert report.after_bytes == one.disk_bytes and not report.fits


def test_an_entry_leased_after_the_plan_is_kept_and_names_its_leaseholders(
        tmp_path: Path) -> None:
    store = meanwhile_store(tmp_path)
    _one, two, _three = three(store, tmp_path)
    store.meanwhile[two.sha256] = "lease"
    report = collect_garbage(store, 0)
    assert [(s.record.name, why) for s, why in report.skipped] == [
        ("two", "leased meanwhile by PID 4242, 4343")]
    assert [s.record.name for s in report.evicted] == ["one", "three"]
    assert store.record(two.sha256) is not None


def test_a_busy_entry_does_not_stop_the_others(store: Store, tmp_path: Path) -> None:
    one, _two, _three = three(store, tmp_path)
    with store.lock(one.sha256):
        report = collect_garbage(store, 0)
    assert [s.record.name for s in report.evicted] == ["two", "three"]
    assert report.dry_run is False and report.leftovers_removed == 0  # JSON: false


def leftover(store: Store, record: EntryRecord) -> Path:
    """What an install killed half-way leaves in the store's tmp/."""
    path = store.tmp_dir / f"{record.sha256}.{'ab' * 4}"
    path.mkdir(parents=True)
    (path / "half").write_text("x")
    return path


def test_gc_removes_leftovers_and_counts_them_but_a_dry_run_does_not(
        store: Store, tmp_path: Path) -> None:
    one, _two, _three = three(store, tmp_path)
    left = leftover(store, one)
    dry = collect_garbage(store, 10**12, dry_run=True)
    assert left.is_dir() and dry.leftovers_removed == 0
    report = collect_garbage(store, 10**12)
    assert not left.exists() and report.leftovers_removed == 1 and report.evicted == ()


def test_a_dry_run_reports_the_plan_as_if_applied(store: Store, tmp_path: Path) -> None:
    one, two, three_ = three(store, tmp_path)
    report = collect_garbage(store, three_.disk_bytes, dry_run=True)
    assert report.dry_run and report.skipped == ()
    assert [s.record.name for s in report.evicted] == ["one", "two"]
    assert report.plan.evict == report.evicted
    assert report.after_bytes == report.plan.after_bytes == three_.disk_bytes
    assert report.freed_bytes == du(*(store.entry_path(r.sha256) for r in (one, two, three_))) \
        - three_.disk_bytes
    assert report.freed_bytes < one.disk_bytes + two.disk_bytes and report.fits


def test_a_mounted_entry_counts_its_image_not_the_files_its_mount_shows(tmp_path: Path) -> None:
    """A mounted entry's directory shows the image's files (another file system, no inode shared
    with the objects): gc counts the image file the store holds, its ``disk_bytes``."""
    from dataclasses import replace

    from builder.agent.gc import store_usage

    shown = tmp_path / "mounted"
    (shown / "app").mkdir(parents=True)
    (shown / "app" / "big").write_bytes(b"x" * 200_000)
    extracted = state("a", 5, 1.0)
    mounted = state("b", 7_000, 2.0)
    mounted = EntryState(record=replace(mounted.record, image="squashfs", mounted_with="kernel"),
                         path=shown, last_use=2.0, pinned=False, leases=())
    extracted = EntryState(record=extracted.record, path=shown, last_use=1.0, pinned=False,
                           leases=())
    usage = store_usage([mounted, extracted])
    assert sum(usage["b" * 64].values()) == 7_000
    assert sum(usage["a" * 64].values()) >= 200_000  # the same tree, walked when extracted
