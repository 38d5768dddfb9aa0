"""The tree while it is checked: moved away from where it was built, and watched for writes.

One kind of write is undone instead of refused: Python's bytecode cache (``__pycache__/*.pyc``).
An interpreter run without ``-B`` (the launcher runs ``python -I``, which ignores
PYTHONDONTWRITEBYTECODE) caches what it compiles where it can; on the read-only mount it silently
cannot, so nothing breaks at run time. The files are removed and the times of their directories
put back, so the archive is the same as without the checks; the build log names them (they cost
a compile at every start: the build should precompile them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.errors import InternalError
from builder.treewatch import Snapshot, diff

CHECKED_SUFFIX = ".checking"  # the bundle dir is renamed to <name>.checking while checked
SHOWN_CHANGES = 10

@contextmanager
def moved(bundle_root: Path) -> Iterator[Path]:
    """``bundle_root`` renamed to a sibling (same file system: instant) for the duration, so
    whatever still names the staging path breaks as it would once installed elsewhere."""
    checked = bundle_root.with_name(bundle_root.name + CHECKED_SUFFIX)
    if checked.exists():
        raise InternalError(f"{checked} exists before the checks")
    bundle_root.rename(checked)
    try:
        yield checked
    finally:
        checked.rename(bundle_root)


def changes(before: Snapshot, after: Snapshot) -> tuple[str, ...]:
    """What differs, one line per path, sorted by path: ``added P``, ``removed P``,
    ``changed P`` (directories by their times too: the archive would differ)."""
    return tuple(change.line for change in diff(before, after, dir_times=True))


def is_bytecode(path: str) -> bool:
    """A ``__pycache__`` directory or a ``.pyc`` file in one."""
    parts = path.split("/")
    return parts[-1] == "__pycache__" or (len(parts) > 1 and parts[-2] == "__pycache__"
                                           and parts[-1].endswith(".pyc"))


def undo_bytecode(root: Path, before: Snapshot, after: Snapshot) -> tuple[str, ...]:
    """Remove the bytecode caches added since ``before`` and put back the times of the
    directories they were added to; the paths removed, sorted."""
    added = []
    # deepest first: the files of a new __pycache__, then the directory (if nothing else is in it)
    new = after.entries.keys() - before.entries.keys()
    for path in sorted((p for p in new if is_bytecode(p)), reverse=True):
        target = root / path
        if after.entries[path].kind != "dir":
            target.unlink()
        elif any(target.iterdir()):
            continue  # something else was written there: reported as a change
        else:
            target.rmdir()
        added.append(path)
    for parent in {os.path.dirname(p) for p in added}:  # noqa: PTH120
        if parent in before.entries:
            mtime = before.entries[parent].mtime_ns
            os.utime(root / parent, ns=(mtime, mtime), follow_symlinks=False)
    return tuple(sorted(added))


def render_changes(lines: tuple[str, ...], shown: int = SHOWN_CHANGES) -> str:
    text = "\n".join(f"  {line}" for line in lines[:shown])
    if len(lines) > shown:
        text += f"\n  ... and {len(lines) - shown} more"
    return text
