"""Owned scratch paths: a live owner's path is kept, a dead owner's is collected, the rest of
the directory (not ours) is never touched. The dead owners are real processes killed with
SIGKILL, so the kernel, not our code, is what drops their locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from builder.fsutil import atomic_output, atomic_write_text
from builder.scratch import OWNER, claim, claimed, claimed_dir, collect, owner_of, release

ROOT = Path(__file__).resolve().parents[3]


def killed_owner(code: str) -> list[Path]:
    """Run ``code`` (it prints paths, one a line, then says ``ready``) in a child Python,
    SIGKILL the child there, and return the printed paths."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdout is not None
    paths = []
    for line in proc.stdout:
        if line.strip() == "ready":
            break
        paths.append(Path(line.strip()))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    return paths


def test_a_dead_owners_directory_is_collected(tmp_path: Path) -> None:
    (path,) = killed_owner(
        "from pathlib import Path; import time\n"
        "from builder.scratch import claimed_dir\n"
        f"with claimed_dir(Path({str(tmp_path)!r}), prefix='builder-stage-') as d:\n"
        "    (d / 'sub').mkdir(); (d / 'sub' / 'f').write_text('x'); (d / 'sub').chmod(0o500)\n"
        "    print(d); print('ready', flush=True); time.sleep(60)\n")
    assert path.is_dir() and owner_of(path).is_file()  # the leftover a SIGKILL leaves
    assert collect(tmp_path) == (path,)
    assert list(tmp_path.iterdir()) == []


def test_a_dead_writers_tmp_file_is_collected_and_the_target_never_appears(
        tmp_path: Path) -> None:
    target = tmp_path / "app.tar.zst"
    (path,) = killed_owner(
        "from pathlib import Path; import time\n"
        "from builder.fsutil import atomic_output\n"
        f"with atomic_output(Path({str(target)!r})) as tmp:\n"
        "    tmp.write_bytes(b'half an archive')\n"
        "    print(tmp); print('ready', flush=True); time.sleep(60)\n")
    assert path.name.startswith(".app.tar.zst.") and path.name.endswith(".tmp")
    assert path.read_bytes() == b"half an archive"
    assert collect(tmp_path) == (path,)
    assert list(tmp_path.iterdir()) == []


def test_a_live_owners_path_is_kept(tmp_path: Path) -> None:
    with claimed_dir(tmp_path, prefix="builder-stage-") as stage:
        (stage / "f").write_text("working")
        assert collect(tmp_path) == ()
        assert (stage / "f").read_text() == "working"
    assert list(tmp_path.iterdir()) == []  # released: the owner removed it itself


def test_paths_without_an_owner_file_of_ours_are_not_touched(tmp_path: Path) -> None:
    (tmp_path / "builder-stage-old").mkdir()  # an older builder's, or someone else's
    (tmp_path / ".app.tar.zst.x.tmp").write_text("not ours")
    (tmp_path / "notes").write_text("keep")
    (tmp_path / "notes.owner").write_text("a user's file that happens to end in .owner\n")
    (tmp_path / "data").write_text("keep")
    (tmp_path / "data.owner").symlink_to(tmp_path / "notes.owner")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert collect(tmp_path) == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_owner_file_without_its_path_is_collected(tmp_path: Path) -> None:
    """Killed after the owner file was made but before the path was: the owner file goes."""
    (path,) = killed_owner(
        "from pathlib import Path; import time\n"
        "from builder.scratch import claim\n"
        f"held = claim(Path({str(tmp_path)!r}), prefix='.download-')\n"
        "print(held.path); print('ready', flush=True); time.sleep(60)\n")
    assert not path.exists() and owner_of(path).is_file()
    assert collect(tmp_path) == (path,)
    assert list(tmp_path.iterdir()) == []


def test_collect_of_a_missing_directory_is_nothing(tmp_path: Path) -> None:
    assert collect(tmp_path / "absent") == ()


def test_leaving_on_an_error_removes_the_path_and_its_owner(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), claimed_dir(tmp_path, prefix="s-") as stage:
        (stage / "f").write_text("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_claims_are_fresh_names_with_the_prefix_and_suffix(tmp_path: Path) -> None:
    first, second = (claim(tmp_path, prefix=".a.", suffix=".tmp") for _ in range(2))
    try:
        assert first.path != second.path
        for held in (first, second):
            assert held.path.name.startswith(".a.") and held.path.name.endswith(".tmp")
            assert not held.path.exists()
            assert held.owner.read_text() == f"builder {os.getpid()}\n"
            assert held.owner.name == held.path.name + OWNER
    finally:
        release(first)
        release(second)
    assert list(tmp_path.iterdir()) == []


def test_a_claim_whose_owner_file_was_collected_under_it_takes_another_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The instant between creating the owner file and locking it: a collector that locked
    and deleted it first must not leave us owning a deleted file."""
    import builder.scratch as scratch

    real_flock = scratch.fcntl.flock
    stolen: list[str] = []

    def flock_after_a_collector(fd: int, operation: int) -> None:
        if not stolen:  # the first owner file vanishes before we lock it
            (owner,) = tmp_path.glob(f"*{OWNER}")
            owner.unlink()
            stolen.append(owner.name)
        real_flock(fd, operation)

    monkeypatch.setattr(scratch.fcntl, "flock", flock_after_a_collector)
    with claimed(tmp_path, prefix="x-") as path:
        assert owner_of(path).is_file() and owner_of(path).name != stolen[0]
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_leave_only_the_target(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.json", "{}\n")
    with atomic_output(tmp_path / "b.bin", mode=0o755) as tmp:
        tmp.write_bytes(b"b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o755
