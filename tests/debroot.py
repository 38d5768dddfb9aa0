"""Debian's CPython 3.11 as a sysroot unpacked from pinned ``.deb`` files, made once and cached.

The interpreter the aarch64 (and the Debian x86_64) tests import comes from Debian's own packages
without a Debian root to install them in: the ``.deb`` files listed in ``tests/debpins/`` (the
output of ``apt-get download --print-uris``: URL, size, SHA256 from apt's signed package lists)
are downloaded from deb.debian.org, checked and cached by hash in the builder cache, and unpacked
with ``dpkg-deb -x`` into ``.cache/rootfs/debs-python3.11-<arch>-<pins digest>/``: exactly what
builder does with a lock's pinned Kerberos headers (``builder.node.debheaders``). No qemu runs:
an arm64 interpreter is ready in seconds instead of a debootstrap second stage under emulation.
The tree holds ``usr/bin/python3.11``, its stdlib, headers and the shared libraries it links,
and libc6 (so it also serves as ``QEMU_LD_PREFIX`` for a build).

Regenerate the pins when Debian's archive drops a pinned version (a security update replaces a
file in ``debian-security``): ``python tests/debroot.py arm64 amd64`` (runs apt with a private
state directory: the host's apt configuration and lists stay untouched).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "tests" / "debpins"
CACHE = ROOT / ".cache" / "rootfs"
# python3.11-minimal's interpreter, the stdlib (libpython3.11-stdlib), the headers the importer
# reads the version from (libpython3.11-dev), every library its extension modules link, and the
# C/C++ runtime manylinux wheels may link (libgcc-s1, libstdc++6: pyzmq's libzmq needs both when
# a build imports it under qemu with this tree as QEMU_LD_PREFIX)
PACKAGES = (
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libpython3.11",
    "libpython3.11-dev", "libc6", "libbz2-1.0", "libcom-err2", "libcrypt1", "libdb5.3",
    "libexpat1", "libffi8", "libgssapi-krb5-2", "libk5crypto3", "libkeyutils1", "libkrb5-3",
    "libkrb5support0", "liblzma5", "libncursesw6", "libnsl2", "libreadline8", "libsqlite3-0",
    "libssl3", "libtinfo6", "libtirpc3", "libuuid1", "zlib1g", "libgcc-s1", "libstdc++6",
)
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITES = (("debian", "bookworm"), ("debian", "bookworm-updates"),
          ("debian-security", "bookworm-security"))


def pins_file(arch: str) -> Path:
    return PINS / f"python3.11-{arch}.uris"


def ensure_debroot(arch: str, *, cache_dir: Path) -> Path:
    """The unpacked root of the pinned packages for Debian architecture ``arch``.

    When a pinned file is gone from Debian's archive (a security update superseded it), the
    tests go on with bookworm's current versions, taken from apt's signed lists exactly as
    ``python tests/debroot.py`` would pin them, and say so on stderr: the pins in git then
    need regenerating, but a CI run on a fresh machine does not fail for Debian's archive
    moving on. ``BUILDER_TEST_STRICT_DEBPINS=1`` turns that into an error instead.
    """
    from builder.errors import BuilderError

    text = pins_file(arch).read_text()
    try:
        return _unpacked(arch, text, cache_dir=cache_dir)
    except BuilderError as exc:
        hint = (f"{exc.what} ({exc.where}); when a pinned file is gone from Debian's archive, "
                f"regenerate the pins: python tests/debroot.py {arch}")
        if os.environ.get("BUILDER_TEST_STRICT_DEBPINS") == "1":
            raise RuntimeError(hint) from None
        print(f"tests/debroot.py: {hint}; going on with bookworm's current versions",
              file=sys.stderr)
    return _unpacked(arch, print_uris(arch), cache_dir=cache_dir)


def _unpacked(arch: str, text: str, *, cache_dir: Path) -> Path:
    from builder.node.debheaders import fetch_pinned_headers, parse_print_uris
    from builder.tools.run import run_in

    pins = parse_print_uris(text, packages=PACKAGES)
    if {p.filename.rsplit("_", 1)[-1] for p in pins} != {f"{arch}.deb"}:
        raise RuntimeError(f"{pins_file(arch)} pins packages of another architecture")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    final = CACHE / f"debs-python3.11-{arch}-{digest}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / f".debs-python3.11-{arch}.lock")):
        if (final / ".builder-rootfs-complete").is_file():
            return final
        work = CACHE / f".{final.name}.work"
        if work.exists():
            shutil.rmtree(work)
        try:
            unpacked = fetch_pinned_headers(pins, work, cache_dir=cache_dir.absolute(),
                                            runner=run_in)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        (unpacked.root / ".builder-rootfs-complete").write_text(text)
        if final.exists():
            shutil.rmtree(final)
        unpacked.root.rename(final)
        shutil.rmtree(work)
        for stale in CACHE.glob(f"debs-python3.11-{arch}-*"):  # trees of earlier pins
            if stale != final:
                shutil.rmtree(stale, ignore_errors=True)
    return final


def print_uris(arch: str, mirror: str = "http://deb.debian.org") -> str:
    """``apt-get download --print-uris`` of PACKAGES for ``arch``, from bookworm's current
    lists, with apt's state in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="debpins-") as tmp:
        state = Path(tmp)
        for sub in ("lists/partial", "cache/archives/partial"):
            (state / sub).mkdir(parents=True)
        (state / "status").touch()
        (state / "sources.list").write_text("".join(
            f"deb [signed-by={KEYRING}] {mirror}/{path} {suite} main\n" for path, suite in SUITES))
        options = [f"-oAPT::Architecture={arch}", f"-oAPT::Architectures={arch}",
                   f"-oDir::State::Lists={state}/lists", f"-oDir::Cache={state}/cache",
                   f"-oDir::State::status={state}/status",
                   f"-oDir::Etc::SourceList={state}/sources.list",
                   f"-oDir::Etc::SourceParts={state}/none", "-oAcquire::Languages=none",
                   "-oAPT::Sandbox::User=root"]
        subprocess.run(["apt-get", *options, "-qq", "update"], check=True)
        proc = subprocess.run(["apt-get", *options, "download", "--print-uris", *PACKAGES],
                              check=True, capture_output=True, text=True)
    return "".join(sorted(line + "\n" for line in proc.stdout.splitlines()
                          if line.startswith("'")))


if __name__ == "__main__":
    for debian_arch in sys.argv[1:] or ["arm64", "amd64"]:
        pins_file(debian_arch).write_text(print_uris(debian_arch))
        print(pins_file(debian_arch))
