"""The build steps' private copy of the app: made, and its scripts pointed at it.
(Snapshots and what changed between two of them: :mod:`builder.treewatch`.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from builder.errors import BuilderError

SHEBANG_MAX = 4096


def copy_tree(source: Path, dest: Path) -> None:
    """A full, independent copy of ``source`` at ``dest`` (which must not exist): same modes,
    times and symlinks; copy-on-write clones where the filesystem has them (btrfs, XFS).

    Not hard links (``cp -al``), although that would be instant: a tool that rewrites a file
    in place (``open(path, "w")`` truncates the existing inode, as json/config writers do)
    would then write through the link into the other tree, and the two runs would no longer
    be independent (nor would the real tree be left as its own run made it).
    """
    if shutil.which("cp") is not None:
        proc = subprocess.run(["cp", "-a", "--reflink=auto", "--", str(source), str(dest)],
                              capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        shutil.rmtree(dest, ignore_errors=True)
        detail = proc.stderr.strip()
    else:
        try:
            shutil.copytree(source, dest, symlinks=True)
            return
        except (OSError, shutil.Error) as exc:
            detail = str(exc)
    raise BuilderError(f"cannot copy the app for the second run of the build steps: {detail}",
                       where=str(dest), hint="is there enough free space in the staging "
                       "directory's filesystem (the cache's, <cache>/stage)?")


def point_scripts_at(root: Path, *, bin_dir: Path, old: Path) -> None:
    """In a copy at ``root`` of the tree at ``old``: scripts in ``bin_dir`` that name the old
    tree's interpreter (installers write absolute shebangs, or a ``/bin/sh`` + ``exec`` line for
    long paths) now name the copy's, so a console script run in the copy works on the copy."""
    forms = sorted({os.fsencode(old), os.fsencode(os.path.realpath(old))}, key=len,
                   reverse=True)
    new = os.fsencode(root)
    if not bin_dir.is_dir():
        return
    for script in sorted(bin_dir.iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as fh:
            head = fh.read(SHEBANG_MAX)
        if not head.startswith(b"#!") or not any(f + b"/" in head for f in forms):
            continue
        data = script.read_bytes()
        for form in forms:
            data = data.replace(form + b"/", new + b"/")
        script.write_bytes(data)  # the same inode: its mode is kept
