"""``builder agent gc``: least-recently-used eviction until the store fits a byte budget.

Planning is pure (:func:`plan_gc`); applying takes each entry's lock without waiting (an entry
being installed or pinned right now is skipped) and checks pins and leases again under it.
Pinned entries and entries leased by a live process are never evicted.

Bytes are unique bytes: entries share the store's objects (hard links), so :func:`store_usage`
lists the inodes each entry holds with their blocks, an inode several entries hold counts once in
the store's total, and evicting an entry frees only the inodes no remaining entry holds. After
the evictions, objects no entry links any more are removed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from builder.agent.objects import orphans
from builder.agent.store import RECORD, EntryState, Store

# sha256 of an entry -> {inode key: bytes on disk}
Usage = Mapping[str, Mapping[object, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class GcPlan:
    max_bytes: int
    total_bytes: int
    evict: tuple[EntryState, ...]  # in eviction order (least recently used first)
    protected: tuple[EntryState, ...]  # pinned or leased
    after_bytes: int

    @property
    def fits(self) -> bool:
        return self.after_bytes <= self.max_bytes


class _Accounting:
    """Unique bytes of a set of entries, as entries are taken away."""

    def __init__(self, states: Sequence[EntryState], usage: Usage | None) -> None:
        self.held: Usage = usage if usage is not None else {
            s.record.sha256: {s.record.sha256: s.record.disk_bytes} for s in states}
        shas = [s.record.sha256 for s in states]
        self.refs = Counter(key for sha in shas for key in self.held.get(sha, {}))
        self.size = {key: n for sha in shas for key, n in self.held.get(sha, {}).items()}
        self.left = sum(self.size.values())

    def remove(self, sha256: str) -> None:
        for key in self.held.get(sha256, {}):
            self.refs[key] -= 1
            if self.refs[key] == 0:
                self.left -= self.size[key]


def plan_gc(states: Sequence[EntryState], max_bytes: int, usage: Usage | None = None
            ) -> GcPlan:
    """``usage``: the inodes of each entry (:func:`store_usage`); without it every entry counts
    its record's ``disk_bytes`` alone."""
    accounting = _Accounting(states, usage)
    total = accounting.left
    protected = tuple(s for s in states if s.pinned or s.leases)
    candidates = sorted((s for s in states if not (s.pinned or s.leases)),
                        key=lambda s: (s.last_use, s.record.sha256))
    evict = []
    for state in candidates:
        if accounting.left <= max_bytes:
            break
        evict.append(state)
        accounting.remove(state.record.sha256)
    return GcPlan(max_bytes=max_bytes, total_bytes=total, evict=tuple(evict),
                  protected=protected, after_bytes=accounting.left)


def _after(states: Sequence[EntryState], usage: Usage | None, gone: Iterable[str]) -> int:
    accounting = _Accounting(states, usage)
    for sha in gone:
        accounting.remove(sha)
    return accounting.left


def store_usage(states: Sequence[EntryState]) -> dict[str, dict[object, int]]:
    """For each entry, every inode below it (links not followed; its record file left out, as
    its ``disk_bytes`` leaves it out) with the bytes it takes on disk. A mounted entry is its
    image file (``disk_bytes``), not the files the mount shows, which share no inode with the
    store's objects."""
    usage: dict[str, dict[object, int]] = {}
    for state in states:
        if state.record.image is not None:  # a mounted image: its file is what the disk holds
            usage[state.record.sha256] = {("image", state.record.sha256): state.record.disk_bytes}
            continue
        held: dict[object, int] = {}
        root = str(state.path)
        for directory, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames if directory != root else \
                    [n for n in dirnames + filenames if n != RECORD] + ["."]:
                try:
                    st = os.lstat(f"{directory}/{name}")
                except OSError:
                    continue
                held[(st.st_dev, st.st_ino)] = st.st_blocks * 512
        usage[state.record.sha256] = held
    return usage


@dataclass(frozen=True, slots=True, kw_only=True)
class GcReport:
    plan: GcPlan
    evicted: tuple[EntryState, ...]
    skipped: tuple[tuple[EntryState, str], ...]  # (entry, why): busy, pinned or leased meanwhile
    after_bytes: int
    leftovers_removed: int
    dry_run: bool

    objects_removed: int = 0

    @property
    def freed_bytes(self) -> int:
        return self.plan.total_bytes - self.after_bytes

    @property
    def fits(self) -> bool:
        return self.after_bytes <= self.plan.max_bytes


def collect_garbage(store: Store, max_bytes: int, *, dry_run: bool = False) -> GcReport:
    store.ensure()
    leftovers = 0 if dry_run else store.discard_all_leftovers()
    states = store.states()
    usage = store_usage(states)
    plan = plan_gc(states, max_bytes, usage)
    if dry_run:
        return GcReport(plan=plan, evicted=plan.evict, skipped=(), after_bytes=plan.after_bytes,
                        leftovers_removed=0, dry_run=True)
    evicted: list[EntryState] = []
    skipped: list[tuple[EntryState, str]] = []
    for state in plan.evict:
        sha = state.record.sha256
        held = store.try_lock(sha)
        if held is None:
            skipped.append((state, "busy (another agent holds its lock)"))
            continue
        with held:
            if store.is_pinned(sha):
                skipped.append((state, "pinned meanwhile"))
            elif pids := store.live_leases(sha):
                skipped.append((state, f"leased meanwhile by PID {', '.join(map(str, pids))}"))
            elif store.record(sha) is not None:
                store.evict(sha)
                evicted.append(state)
    after = _after(states, usage, (s.record.sha256 for s in evicted))
    removed = 0
    for path in orphans(store.objects_dir):
        path.unlink(missing_ok=True)
        removed += 1
    return GcReport(plan=plan, evicted=tuple(evicted), skipped=tuple(skipped), after_bytes=after,
                    leftovers_removed=leftovers, dry_run=False, objects_removed=removed)
