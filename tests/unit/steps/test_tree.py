"""Snapshots and their differences; the private copy."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from builder.steps import ChangeKind
from builder.steps.tree import copy_tree, point_scripts_at
from builder.treewatch import Snapshot, diff, snapshot


def test_diff_finds_added_changed_removed_entries(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "same").write_text("x")
    (tmp_path / "d" / "gone").write_text("x")
    (tmp_path / "mode").write_text("x")
    (tmp_path / "link").symlink_to("d/same")
    before = snapshot(tmp_path)
    (tmp_path / "d" / "gone").unlink()
    (tmp_path / "d" / "new").write_text("y")
    (tmp_path / "e").mkdir()
    (tmp_path / "mode").chmod(0o700)
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("mode")
    found = [(c.path, c.kind, c.is_dir) for c in diff(before, snapshot(tmp_path))]
    assert found == [
        ("d/gone", ChangeKind.REMOVED, False),
        ("d/new", ChangeKind.ADDED, False),
        ("e", ChangeKind.ADDED, True),
        ("link", ChangeKind.CHANGED, False),
        ("mode", ChangeKind.CHANGED, False),
    ]


def test_a_racy_file_is_compared_by_content(tmp_path: Path) -> None:
    """A file written just before the snapshot is hashed: a rewrite that kept every stat
    field (same size, within one timestamp tick) is still seen."""
    (tmp_path / "f").write_text("aaaa")
    before = snapshot(tmp_path)
    assert before.entries["f"].digest is not None
    (tmp_path / "f").write_text("bbbb")
    now = snapshot(tmp_path).entries["f"]
    # every stat field as before; the later snapshot hashed the file too, or (taken after the
    # racy window) did not, and the file is read again
    for digest in (now.digest, None):
        same_stat = Snapshot(root=tmp_path,
                             entries={"f": dataclasses.replace(before.entries["f"], digest=digest)})
        assert [c.path for c in diff(before, same_stat)] == ["f"]
    assert diff(before, before) == ()


def test_the_racy_rule_looks_at_ctime_too(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("old")
    os.utime(tmp_path / "f", ns=(1_000_000_123, 1_000_000_123))
    entry = snapshot(tmp_path).entries["f"]
    assert entry.mtime_ns == 1_000_000_123
    # ctime is now: still racy; the rule looks at the later of ctime and mtime
    assert entry.digest is not None


def test_copy_is_independent_and_keeps_links_and_modes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text(f"#!{src}/bin/python\nprint('{src}/data')\n")
    (src / "bin" / "tool").chmod(0o755)
    (src / "bin" / "python").symlink_to("/usr/bin/python3")
    (src / "bin" / "plain").write_text(f"{src}/not a script\n")
    copy = tmp_path / "copy"
    copy_tree(src, copy)
    point_scripts_at(copy, bin_dir=copy / "bin", old=src)
    assert (copy / "bin" / "tool").read_text() == f"#!{copy}/bin/python\nprint('{copy}/data')\n"
    assert (copy / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (copy / "bin" / "python").readlink() == Path("/usr/bin/python3")
    assert (copy / "bin" / "plain").read_text() == f"{src}/not a script\n"
    assert (src / "bin" / "tool").read_text().startswith(f"#!{src}/bin/python\n")
    (copy / "bin" / "plain").write_text("changed")  # in place: must not reach the source
    assert (src / "bin" / "plain").read_text() == f"{src}/not a script\n"
