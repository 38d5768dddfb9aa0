"""``builder agent gc``: least-recently-used eviction until the store fits a byte budget.

Planning is pure (:func:`plan_gc`); applying takes each entry's lock without waiting (an entry
being installed or pinned right now is skipped) and checks pins and leases again under it.
Pinned entries and entries leased by a live process are never evicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from builder.agent.store import EntryState, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class GcPlan:
    max_bytes: int
    total_bytes: int
    evict: tuple[EntryState, ...]  # in eviction order (least recently used first)
    protected: tuple[EntryState, ...]  # pinned or leased

    @property
    def after_bytes(self) -> int:
        return self.total_bytes - sum(s.record.disk_bytes for s in self.evict)

    @property
    def fits(self) -> bool:
        return self.after_bytes <= self.max_bytes


def plan_gc(states: Sequence[EntryState], max_bytes: int) -> GcPlan:
    total = sum(s.record.disk_bytes for s in states)
    protected = tuple(s for s in states if s.pinned or s.leases)
    candidates = sorted((s for s in states if not (s.pinned or s.leases)),
                        key=lambda s: (s.last_use, s.record.sha256))
    evict = []
    left = total
    for state in candidates:
        if left <= max_bytes:
            break
        evict.append(state)
        left -= state.record.disk_bytes
    return GcPlan(max_bytes=max_bytes, total_bytes=total, evict=tuple(evict),
                  protected=protected)


@dataclass(frozen=True, slots=True, kw_only=True)
class GcReport:
    plan: GcPlan
    evicted: tuple[EntryState, ...]
    skipped: tuple[tuple[EntryState, str], ...]  # (entry, why): busy, pinned or leased meanwhile
    after_bytes: int
    leftovers_removed: int
    dry_run: bool

    @property
    def freed_bytes(self) -> int:
        return sum(s.record.disk_bytes for s in self.evicted)

    @property
    def fits(self) -> bool:
        return self.after_bytes <= self.plan.max_bytes


def collect_garbage(store: Store, max_bytes: int, *, dry_run: bool = False) -> GcReport:
    store.ensure()
    leftovers = 0 if dry_run else store.discard_all_leftovers()
    plan = plan_gc(store.states(), max_bytes)
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
    after = plan.total_bytes - sum(s.record.disk_bytes for s in evicted)
    return GcReport(plan=plan, evicted=tuple(evicted), skipped=tuple(skipped), after_bytes=after,
                    leftovers_removed=leftovers, dry_run=False)
