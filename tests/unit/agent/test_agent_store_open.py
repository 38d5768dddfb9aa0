"""``Store.open_entry``: the prelude every install of an entry starts with (archive, OCI image
and mounted image alike): the store made, the entry's lock held, leftovers of an interrupted
install removed and said, the entry's record read; ``Store.installed`` ends it."""

from __future__ import annotations

import json
from pathlib import Path

from agent_factories import X86, make_bundle

from builder.agent import InstallOptions, NetAgentTransport, Store, install
from builder.agent.source import resolve_source

T = NetAgentTransport()
SHA = "ab" * 32


def test_a_new_entry_opens_with_the_store_made_and_its_lock_held(tmp_path: Path) -> None:
    store = Store(root=tmp_path / "store", clock=lambda: 1_000.0)
    said: list[str] = []
    with store.open_entry(SHA, log=said.append) as record:
        assert record is None
        assert store.entries_dir.is_dir() and store.tmp_dir.is_dir()
        assert store.try_lock(SHA) is None  # held by this block
    assert said == []
    held = store.try_lock(SHA)
    assert held is not None  # released after it
    with held:
        pass


def test_leftovers_are_removed_and_said_before_the_record_is_read(tmp_path: Path) -> None:
    store = Store(root=tmp_path / "store", clock=lambda: 1_000.0)
    store.ensure()
    work = store.tmp_dir / f"{SHA}.123.abab"  # a work dir a killed install left
    work.mkdir()
    (work / "half").write_text("x")
    half = store.entry_path(SHA)  # an entry renamed into place without its record
    half.mkdir()
    other = store.tmp_dir / f"{'cd' * 32}.1.abab"  # another entry's: not this one's business
    other.mkdir()
    said: list[str] = []
    with store.open_entry(SHA, log=said.append) as record:
        assert record is None
        assert not work.exists() and not half.exists() and other.is_dir()
    assert said == [f"removed leftovers of an interrupted install of {SHA[:16]}"]


def test_an_installed_entry_opens_with_its_record_and_installed_marks_its_use(
        tmp_path: Path) -> None:
    now = [1_000.0]
    store = Store(root=tmp_path / "store", clock=lambda: now[0])
    archive = make_bundle(tmp_path / "dist").archive
    source = resolve_source(str(archive), index=None, sha256=None, target=X86, transport=T)
    first = install(source, store, transport=T, options=InstallOptions()).record
    (store.root / "names" / f"{first.name}.json").unlink()
    now[0] = 2_000.0
    with store.open_entry(first.sha256) as record:
        assert record == first
        store.installed(record)
    assert store.last_use(first) == 2_000.0
    assert json.loads((store.root / "names" / f"{first.name}.json").read_text()) == {
        "name": first.name, "sha256": first.sha256, "version": first.version}
