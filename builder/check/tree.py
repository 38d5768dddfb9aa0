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
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from builder.errors import InternalError

CHECKED_SUFFIX = ".checking"  # the bundle dir is renamed to <name>.checking while checked
SHOWN_CHANGES = 10

# path -> (mode, size, mtime_ns, link target); the size of a directory is left out (it moves
# with unrelated bookkeeping on some file systems), its mtime is not
Entry = tuple[int, int, int, str]


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


def snapshot(root: Path) -> dict[str, Entry]:
    """Every path under ``root`` (not ``root`` itself) with what a write would change."""
    found: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in (*dirnames, *sorted(filenames)):
            path = os.path.join(dirpath, name)  # noqa: PTH118 (a hot loop over every file)
            info = os.lstat(path)
            link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""  # noqa: PTH115
            size = 0 if stat.S_ISDIR(info.st_mode) else info.st_size
            found[os.path.relpath(path, root)] = (info.st_mode, size, info.st_mtime_ns, link)
    return found


def changes(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> tuple[str, ...]:
    """What differs, one line per path, sorted: ``added P``, ``removed P``, ``changed P``."""
    lines = [f"added {p}" for p in after.keys() - before.keys()]
    lines += [f"removed {p}" for p in before.keys() - after.keys()]
    lines += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return tuple(sorted(lines, key=lambda line: (line.split(" ", 1)[1], line)))


def is_bytecode(path: str) -> bool:
    """A ``__pycache__`` directory or a ``.pyc`` file in one."""
    parts = path.split("/")
    return parts[-1] == "__pycache__" or (len(parts) > 1 and parts[-2] == "__pycache__"
                                           and parts[-1].endswith(".pyc"))


def undo_bytecode(root: Path, before: Mapping[str, Entry],
                  after: Mapping[str, Entry]) -> tuple[str, ...]:
    """Remove the bytecode caches added since ``before`` and put back the times of the
    directories they were added to; the paths removed, sorted."""
    added = []
    # deepest first: the files of a new __pycache__, then the directory (if nothing else is in it)
    for path in sorted((p for p in after.keys() - before.keys() if is_bytecode(p)), reverse=True):
        target = root / path
        if not stat.S_ISDIR(after[path][0]):
            target.unlink()
        elif any(target.iterdir()):
            continue  # something else was written there: reported as a change
        else:
            target.rmdir()
        added.append(path)
    for parent in {os.path.dirname(p) for p in added}:  # noqa: PTH120
        if parent in before:
            mtime = before[parent][2]
            os.utime(root / parent, ns=(mtime, mtime), follow_symlinks=False)
    return tuple(sorted(added))


def render_changes(lines: tuple[str, ...], shown: int = SHOWN_CHANGES) -> str:
    text = "\n".join(f"  {line}" for line in lines[:shown])
    if len(lines) > shown:
        text += f"\n  ... and {len(lines) - shown} more"
    return text
