"""Tiny staged app trees and fakes for the relocate tests (no real ELF, no subprocess)."""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from servers import pyenv_prefix

from builder.elf import ElfInfo
from builder.relocate import PycResult, RelocationPlan, plan_relocation

FAKE_ELF = b"\x7fELF fake for tests\n"
MINOR = "3.11"
SITE = f"python/lib/python{MINOR}/site-packages"


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def make_app(staging: Path, *, interpreter: Path | None = None) -> Path:
    """``<staging>/app`` with python/bin/python3.11 (fake ELF, or a symlink), python3 -> it."""
    app = staging / "app"
    bindir = app / "python" / "bin"
    bindir.mkdir(parents=True)
    (app / SITE).mkdir(parents=True)
    if interpreter is None:
        write(bindir / f"python{MINOR}", FAKE_ELF, 0o755)
    else:
        (bindir / f"python{MINOR}").symlink_to(interpreter)
    (bindir / "python3").symlink_to(f"python{MINOR}")
    return app


def staged_shebang(app: Path) -> bytes:
    """What pypa/installer writes: a plain shebang, or its sh form for spaces/long paths."""
    executable = f"{app}/python/bin/python3"
    if " " not in executable and len(executable) + 3 <= 127:
        return f"#!{executable}\n".encode()
    quoted = shlex.quote(executable)
    return f"#!/bin/sh\n'''exec' {quoted} \"$0\" \"$@\"\n' '''\n".encode()


CONSOLE_BODY = (
    b"# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom hello import main\n"
    b'if __name__ == "__main__":\n'
    b'    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
    b"    sys.exit(main())\n"
)


def console_script(app: Path, name: str, body: bytes = CONSOLE_BODY) -> Path:
    return write(app / "python" / "bin" / name, staged_shebang(app) + body, 0o755)


def dist_info(
    app: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    installed: tuple[str, ...] = (),
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A ``<name>-<version>.dist-info`` with a correct RECORD.

    ``files`` are written relative to site-packages; ``installed`` are site-relative paths of
    files already on disk (scripts) that RECORD must list too.
    """
    site = app / SITE
    info = site / f"{name}-{version}.dist-info"
    meta = {"METADATA": f"Name: {name}\nVersion: {version}\n".encode(), "INSTALLER": b"test\n"}
    meta.update(extra or {})
    rows: list[str] = []
    for rel, data in sorted(files.items()):
        write(site / rel, data)
    for rel, data in sorted(meta.items()):
        write(info / rel, data)
        rows.append(f"{info.name}/{rel},{record_hash(data)},{len(data)}")
    for rel in sorted([*files, *installed]):
        data = (site / rel).read_bytes()
        rows.append(f"{rel},{record_hash(data)},{len(data)}")
    rows.append(f"{info.name}/RECORD,,")
    write(info / "RECORD", ("\n".join(sorted(rows)) + "\n").encode())
    return info


def elf_info(
    path: str = "x",
    *,
    needed: tuple[str, ...] = (),
    rpath: tuple[str, ...] = (),
    runpath: tuple[str, ...] = (),
    elf_type: str = "ET_DYN",
) -> ElfInfo:
    return ElfInfo(
        path=Path(path),
        arch="x86_64",
        elf_type=elf_type,
        soname=None,
        needed=needed,
        rpath=rpath,
        runpath=runpath,
        interpreter=None,
        glibc_versions=(),
    )


@dataclass
class FakeElfReader:
    """ElfInfo for app-relative paths; every other file is "not an ELF"."""

    app: Path
    infos: dict[str, ElfInfo] = field(default_factory=dict)

    def read(self, path: Path) -> ElfInfo | None:
        return self.infos.get(os.path.relpath(path, self.app))


@dataclass
class FakePatchelf:
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    app: Path | None = None

    def _rel(self, path: Path) -> str:
        return os.path.relpath(path, self.app) if self.app else str(path)

    def set_rpath(self, path: Path, rpath: str) -> None:
        self.calls.append(("set", self._rel(path), rpath))

    def force_rpath(self, path: Path, rpath: str) -> None:
        self.calls.append(("force", self._rel(path), rpath))


@dataclass
class FakeCompiler:
    """Writes a marker .pyc next to every source, reports ``failing`` ones as failures."""

    failing: tuple[str, ...] = ()
    calls: list[tuple[Path, tuple[Path, ...]]] = field(default_factory=list)

    def compile(self, *, app_root: Path, dirs: tuple[Path, ...]) -> PycResult:
        self.calls.append((app_root, dirs))
        count = 0
        for top in dirs:
            for source in sorted(top.rglob("*.py")):
                rel = source.relative_to(app_root).as_posix()
                if rel in self.failing:
                    continue
                pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
                write(pyc, f"compiled {rel}".encode())
                count += 1
        return PycResult(compiled=count, failed=tuple(sorted(self.failing)))


EXT = f"{SITE}/pkg/_ext.so"


def demo_app(staging: Path) -> tuple[Path, FakeElfReader]:
    """A staged app with every kind of file relocation must tell apart.

    python/bin: the interpreter (fake ELF) and its python3 symlink; console scripts of
    ``hello`` (two) and ``pip-tools``; pip's and the interpreter's own scripts; a sh script.
    site-packages: a module, an extension whose RUNPATH points into staging, and the dist-info
    metadata files relocation removes.
    """
    app = make_app(staging)
    bindir = app / "python" / "bin"
    console_script(app, "hello")
    console_script(app, "hello-admin")
    console_script(app, "pip-compile")
    console_script(app, "pip3")
    console_script(app, "pydoc3", b"import pydoc\npydoc.cli()\n")
    write(bindir / "python3.11-config", b"#!/bin/sh\necho config\n", 0o755)
    write(bindir / "tool.sh", b"#!/bin/sh\nexec true\n", 0o755)
    dist_info(
        app,
        "hello",
        "1.0",
        {"hello/__init__.py": b"def main():\n    print('hello')\n", "pkg/_ext.so": FAKE_ELF},
        installed=("../../../bin/hello", "../../../bin/hello-admin"),
        extra={"REQUESTED": b"", "direct_url.json": f'{{"url": "file://{staging}/w"}}'.encode()},
    )
    dist_info(
        app,
        "pip_tools",
        "7.4.1",
        {"piptools/__init__.py": b""},
        installed=("../../../bin/pip-compile",),
        extra={"REQUESTED": b""},
    )
    dist_info(app, "pip", "24.0", {"pip/__init__.py": b""}, installed=("../../../bin/pip3",))
    reader = FakeElfReader(
        app,
        {
            f"python/bin/python{MINOR}": elf_info(needed=("libc.so.6",), elf_type="ET_EXEC"),
            EXT: elf_info(needed=("libc.so.6",), runpath=(f"{app}/python/lib", "/usr/lib64")),
        },
    )
    return app, reader


def real_python311() -> Path | None:
    """pyenv's CPython 3.11.7 interpreter, or None where it is not installed."""
    prefix = pyenv_prefix("3.11.7")
    found = prefix / "bin" / "python3.11" if prefix is not None else None
    return found if found is not None and found.is_file() else None


def planned_demo(tmp_path: Path, final_root: PurePosixPath) -> tuple[Path, RelocationPlan]:
    """``demo_app`` staged in ``tmp_path/builder-stage-1`` and its relocation plan."""
    staging = tmp_path / "builder-stage-1"
    app, reader = demo_app(staging)
    plan = plan_relocation(app, final_root=final_root, staging_root=staging, expose=None,
                           elf_reader=reader)
    return app, plan
