"""Build-time C headers from Debian packages, unpacked into a directory, never installed.

The ``kerberos`` module includes ``<gssapi/gssapi.h>`` and ``<krb5.h>`` and loads the Kerberos
libraries with ``dlopen`` at run time (``kerberos_use_rtld``), so its build needs headers only.
``apt-get download`` fetches the ``.deb`` files (the host's apt sources, the Debian registry)
and ``dpkg-deb -x`` unpacks them; the host stays untouched and the sha256 of every ``.deb`` is
reported so a lock can pin them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError
from builder.fsutil import sha256_file
from builder.node.run import Runner, run_checked

KRB5_HEADER_PACKAGES = ("comerr-dev", "krb5-multidev", "libkrb5-dev")
KRB5_HEADERS = ("krb5.h", "gssapi/gssapi.h", "gssapi/gssapi_krb5.h")


@dataclass(frozen=True, slots=True, kw_only=True)
class DebFile:
    name: str  # file name, e.g. "libkrb5-dev_1.20.1-2+deb12u5_amd64.deb"
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Headers:
    root: Path  # the unpacked tree
    debs: tuple[DebFile, ...]  # sorted by name

    @property
    def include_dir(self) -> Path:
        return self.root / "usr" / "include"

    def cppflags(self) -> str:
        """Searched after every other directory, so these never shadow the toolchain's."""
        return f"-idirafter {self.include_dir}"


def fetch_debian_headers(
    packages: tuple[str, ...],
    dest: Path,
    *,
    runner: Runner,
    expect: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Headers:
    """Download ``packages`` (``name`` or ``name=version``) and unpack them into ``dest/root``.

    ``expect`` lists header paths (under ``usr/include``) that must exist afterwards.
    """
    debs_dir, root = dest / "debs", dest / "root"
    debs_dir.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ if env is None else env)
    proc = runner(["apt-get", "download", *packages], cwd=debs_dir, env=environment)
    if proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-3:]
        raise BuilderError(
            f"apt-get download {' '.join(packages)} failed: {' / '.join(tail)}",
            where=str(debs_dir),
            hint="run `apt-get update` once (the package lists may be missing), or check that "
            "the Debian registry is reachable",
        )
    debs = sorted(debs_dir.glob("*.deb"))
    for deb in debs:
        run_checked(runner, ["dpkg-deb", "-x", str(deb), str(root)], cwd=dest, env=environment,
                    what=f"unpacking {deb.name}")
    headers = Headers(root=root, debs=tuple(DebFile(name=d.name, sha256=sha256_file(d))
                                            for d in debs))
    missing = [h for h in expect if not (headers.include_dir / h).is_file()]
    if missing:
        raise BuilderError(f"the unpacked packages lack {', '.join(missing)}", where=str(root),
                           hint=f"check the package names: {' '.join(packages)}")
    return headers
