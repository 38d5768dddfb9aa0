"""pip for imported interpreters that have none (Debian's CPython keeps it out of the stdlib).

A bundle needs pip only where its launcher installs a wheelhouse for the image's Python
(``[kernels] image_python = "install"``), but an interpreter without pip would make that fail at
launch time, far from the build. So the import adds the pip python-build-standalone 20240107
ships (23.3.2), pinned by sha256 and cached like every download, to ``site-packages``.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from builder.errors import BuilderError
from builder.net import fetch_to

PIP_VERSION = "23.3.2"
PIP_FILENAME = f"pip-{PIP_VERSION}-py3-none-any.whl"
PIP_SHA256 = "5052d7889c1f9d05224cd41741acb7c5d6fa735ab34e339624a614eaaa7e7d76"
PIP_URL = ("https://files.pythonhosted.org/packages/15/aa/3f4c7bcee2057a76562a5b33ecbd199be08"
           "cdb4443a02e26bd2c3cf6fc39/" + PIP_FILENAME)
# where the pinned wheel is read from instead (a mirror URL or a local file; the hash still holds)
SOURCE_ENV = "BUILDER_PIP_WHEEL"


def fetch_pip_wheel(cache_dir: Path) -> Path:
    """The pinned pip wheel in ``cache_dir/wheels/`` (downloaded once, hash-checked)."""
    dest = cache_dir / "wheels" / "runtime-pip" / PIP_FILENAME
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fetch_to(os.environ.get(SOURCE_ENV) or PIP_URL, dest, expected_sha256=PIP_SHA256,
             progress=False, what=f"pip {PIP_VERSION} (for the imported interpreter)")
    return dest


def add_pip(wheel: Path, site_packages: Path) -> None:
    """Unpack the (pure, scripts-free) pip wheel into ``site-packages``: ``python -m pip``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise BuilderError(f"unsafe member {info.filename!r} in the pip wheel",
                                       where=str(wheel))
                if info.is_dir():
                    continue
                dest = site_packages.joinpath(*name.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(archive.read(info))
                dest.chmod(0o755 if (info.external_attr >> 16) & stat.S_IXUSR else 0o644)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuilderError(f"cannot unpack pip into the interpreter: {exc}",
                           where=str(wheel)) from exc
