"""Build-time C headers from Debian packages, unpacked into a directory, never installed.

The ``kerberos`` module includes ``<gssapi/gssapi.h>`` and ``<krb5.h>`` and loads the Kerberos
libraries with ``dlopen`` at run time (``kerberos_use_rtld``), so its build needs headers only.

Locking asks the lock machine's apt where the packages are (``apt-get download --print-uris``:
URL, size and the SHA256 from apt's signed package lists) and pins that (:class:`DebPin`). A
build downloads exactly those files, checks size and sha256, caches them by hash and unpacks
them with ``dpkg-deb -x``: it needs no package lists, and the host stays untouched. Without pins
(:func:`fetch_debian_headers`) ``apt-get download`` fetches whatever the host's apt has.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from builder import net
from builder.errors import BuilderError
from builder.fsutil import sha256_file
from builder.lock.model import DebPin
from builder.tools.run import Runner, run_checked

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


_URI_LINE = re.compile(r"^'(?P<url>[^']+)' (?P<filename>\S+\.deb) (?P<size>\d+) "
                       r"SHA256:(?P<sha256>[0-9a-f]{64})$")


def parse_print_uris(text: str, *, packages: tuple[str, ...]) -> tuple[DebPin, ...]:
    """``apt-get download --print-uris`` output -> pins, sorted by package; every package
    asked for must be there, with a SHA256."""
    pins = []
    for line in text.splitlines():
        match = _URI_LINE.match(line.strip())
        if match is None:
            continue
        filename = match["filename"]
        name, _, rest = filename.partition("_")
        version = unquote(rest.rpartition("_")[0])
        pins.append(DebPin(package=name, version=version, filename=filename, url=match["url"],
                           size=int(match["size"]), sha256=match["sha256"]))
    missing = sorted(set(packages) - {p.package for p in pins})
    if missing:
        raise BuilderError(f"apt gave no download with a SHA256 for {', '.join(missing)}",
                           hint="run `apt-get update` once, and check the package names")
    return tuple(sorted(pins, key=lambda p: p.package))


def resolve_debs(packages: tuple[str, ...], *, runner: Runner, work_dir: Path,
                 env: Mapping[str, str] | None = None) -> tuple[DebPin, ...]:
    """Where this machine's apt finds ``packages`` (nothing is downloaded)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    proc = runner(["apt-get", "download", "--print-uris", *packages], cwd=work_dir,
                  env=dict(os.environ if env is None else env))
    if proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-3:]
        raise BuilderError(f"apt-get download --print-uris {' '.join(packages)} failed: "
                           f"{' / '.join(tail)}",
                           hint="run `apt-get update` once (the package lists may be missing)")
    return parse_print_uris(proc.stdout or "", packages=packages)


def fetch_pinned_headers(
    pins: tuple[DebPin, ...],
    dest: Path,
    *,
    cache_dir: Path,
    runner: Runner,
    expect: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Headers:
    """Download the pinned ``.deb`` files (cached by sha256, checked) and unpack them into
    ``dest/root``."""
    root = dest / "root"
    root.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ if env is None else env)
    for pin in pins:
        cached = cache_dir / "debs" / pin.sha256 / pin.filename
        if not (cached.is_file() and sha256_file(cached) == pin.sha256):
            cached.parent.mkdir(parents=True, exist_ok=True)
            try:
                net.fetch_to(pin.url, cached, expected_sha256=pin.sha256, progress=False,
                             what=f"{pin.package} {pin.version}", max_bytes=pin.size)
            except BuilderError as exc:
                raise BuilderError(
                    f"cannot get {pin.filename} (pinned by the lock): {exc.what}",
                    where=pin.url,
                    hint="a Debian update may have removed that version from the archive: "
                    "lock again (builder lock RECIPE) to pin the current one") from None
        run_checked(runner, ["dpkg-deb", "-x", str(cached), str(root)], cwd=dest,
                    env=environment, what=f"unpacking {pin.filename}")
    return _checked(Headers(root=root, debs=tuple(DebFile(name=p.filename, sha256=p.sha256)
                                                  for p in pins)),
                    expect, " ".join(p.package for p in pins))


def _checked(headers: Headers, expect: tuple[str, ...], packages: str) -> Headers:
    missing = [h for h in expect if not (headers.include_dir / h).is_file()]
    if missing:
        shutil.rmtree(headers.root, ignore_errors=True)
        raise BuilderError(f"the unpacked packages lack {', '.join(missing)}",
                           where=str(headers.root), hint=f"check the packages: {packages}")
    return headers


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
    return _checked(headers, expect, " ".join(packages))
