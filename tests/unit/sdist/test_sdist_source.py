"""Reading an sdist's build system without running it; what a build may use."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.sdist.build import SdistInput, cache_key, unmet_requirements, wheel_is_pure
from builder.sdist.source import (
    LEGACY_BACKEND,
    BuildSystem,
    parse_build_system,
    read_build_system,
    unpack_sdist,
)
from builder.tools.pip import pip_command


def sdist(tmp_path: Path, files: dict[str, str], name: str = "demo-1.0") -> Path:
    path = tmp_path / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_pyproject_build_system_is_read_from_the_top_directory_only(tmp_path: Path) -> None:
    archive = sdist(tmp_path, {
        "demo-1.0/sub/pyproject.toml": '[build-system]\nrequires = ["wrong"]\n',
        "demo-1.0/pyproject.toml": '[build-system]\nrequires = ["flit_core>=3.2,<4"]\n'
                                   'build-backend = "flit_core.buildapi"\n',
    })
    assert read_build_system(archive) == BuildSystem(requires=("flit_core>=3.2,<4",),
                                                     backend="flit_core.buildapi")


def test_no_pyproject_means_the_setuptools_fallback(tmp_path: Path) -> None:
    archive = sdist(tmp_path, {"demo-1.0/setup.py": "from setuptools import setup\nsetup()\n"})
    system = read_build_system(archive)
    assert system.backend == LEGACY_BACKEND == "setuptools.build_meta:__legacy__"
    assert system.requires == ("setuptools>=40.8.0",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[tool.x]\na = 1\n", BuildSystem(requires=("setuptools>=40.8.0",),
                                          backend=LEGACY_BACKEND)),
        ('[build-system]\nrequires = ["setuptools"]\n',
         BuildSystem(requires=("setuptools",), backend=LEGACY_BACKEND)),
        ('[build-system]\nrequires = []\nbuild-backend = "b"\nbackend-path = ["."]\n',
         BuildSystem(requires=(), backend="b", backend_path=(".",))),
    ],
)
def test_pep_517_and_518_rules(text: str, expected: BuildSystem) -> None:
    assert parse_build_system(text, where="p") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[build-system]\nbuild-backend = 'b'\n", "[build-system] needs requires, a list of "
         "strings (PEP 518)"),
        ("[build-system]\nrequires = [1]\n", "[build-system] needs requires"),
        ("[build-system]\nrequires = []\nbuild-backend = 3\n",
         "[build-system] build-backend must be a string"),
        ("[build-system]\nrequires = []\nbackend-path = ['../up']\n",
         "backend-path '../up' leaves the project (PEP 517)"),
        ("[build-system]\nrequires = []\nbackend-path = ['/abs']\n", "backend-path '/abs' leaves"),
        ("[build-system\n", "pyproject.toml is not valid TOML"),
    ],
)
def test_broken_build_systems_are_refused(text: str, message: str) -> None:
    with pytest.raises(BuilderError) as info:
        parse_build_system(text, where="demo-1.0.tar.gz: pyproject.toml")
    assert info.value.what.startswith(message)
    assert info.value.where == "demo-1.0.tar.gz: pyproject.toml"


def test_only_tar_gz_sdists_are_built(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0.zip"
    path.write_bytes(b"PK")
    with pytest.raises(BuilderError, match=r"only \.tar\.gz source distributions"):
        read_build_system(path)


def test_unsafe_members_are_refused_before_anything_is_built(tmp_path: Path) -> None:
    archive = sdist(tmp_path, {"demo-1.0/../../evil.py": "x"})
    with pytest.raises(BuilderError, match="member leaving the destination"):
        read_build_system(archive)
    with pytest.raises(BuilderError, match="member leaving the destination"):
        unpack_sdist(archive, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_unpack_finds_the_project_directory(tmp_path: Path) -> None:
    archive = sdist(tmp_path, {"Demo-1.0/setup.py": "x"}, name="demo-1.0")
    assert unpack_sdist(archive, tmp_path / "out") == tmp_path / "out" / "Demo-1.0"


@pytest.mark.parametrize(
    ("wheel", "pure"),
    [
        ("demo-1.0-py2.py3-none-any.whl", True),
        ("demo-1.0-py3-none-any.whl", True),
        ("demo-1.0-cp311-cp311-linux_x86_64.whl", False),
        ("demo-1.0-cp311-abi3-linux_x86_64.whl", False),
        ("demo-1.0-py3-none-linux_x86_64.whl", False),
    ],
)
def test_purity_follows_the_tags(wheel: str, pure: bool) -> None:
    assert wheel_is_pure(Path(wheel)) is pure


def test_unmet_requirements() -> None:
    installed = {"setuptools": "80.0", "wheel": "0.45.1"}
    assert unmet_requirements(["setuptools>=61", "wheel", 'x; python_version < "3"'],
                              installed=installed) == []
    assert unmet_requirements(["setuptools<70", "cython", "not a req!"], installed=installed) \
        == ["setuptools<70", "cython", "not a req!"]


def test_the_cache_key_covers_every_input(tmp_path: Path) -> None:
    base = SdistInput(name="demo", version="1.0", archive=tmp_path / "demo-1.0.tar.gz",
                      sha256="a" * 64, build_system=BuildSystem(requires=("s",), backend="b"),
                      requires=("s",), deps=((tmp_path / "s.whl", "b" * 64),))
    key = cache_key(base, python_version="3.11.7", source_date_epoch=0)
    import dataclasses
    variants = [
        cache_key(dataclasses.replace(base, sha256="c" * 64), python_version="3.11.7",
                  source_date_epoch=0),
        cache_key(dataclasses.replace(base, deps=((tmp_path / "s.whl", "d" * 64),)),
                  python_version="3.11.7", source_date_epoch=0),
        cache_key(dataclasses.replace(base, build_system=BuildSystem(requires=("s",),
                                                                     backend="other")),
                  python_version="3.11.7", source_date_epoch=0),
        cache_key(base, python_version="3.11.8", source_date_epoch=0),
        cache_key(base, python_version="3.11.7", source_date_epoch=1),
    ]
    assert key not in variants and len(set(variants)) == len(variants)
    moved = dataclasses.replace(base, archive=tmp_path / "elsewhere" / "demo-1.0.tar.gz",
                                deps=((tmp_path / "x" / "s.whl", "b" * 64),))
    assert cache_key(moved, python_version="3.11.7", source_date_epoch=0) == key


def test_pip_target_lets_only_the_allowed_projects_be_sdists() -> None:
    """The patch pip_target applies, checked in a child process (it changes pip globally)."""
    code = (
        "from builder.tools.pip_target import _allow_sdists\n"
        "_allow_sdists(['Demo_X'])\n"
        "from pip._internal.models.format_control import FormatControl\n"
        "from pip._internal.cli import cmdoptions\n"
        "fc = FormatControl(set(), {':all:'})\n"
        "print(sorted(fc.get_allowed_formats('demo-x')), sorted(fc.get_allowed_formats('y')))\n"
        "class O: pass\n"
        "o = O(); o.python_version = '3.11'; o.platforms = ['x']; o.abis = []\n"
        "o.implementation = None; o.format_control = fc; o.ignore_dependencies = False\n"
        "o.dry_run = True; o.target_dir = None; o.requirements = []; o.dependency_groups = []\n"
        "cmdoptions.check_dist_restriction(o, check_target=True); print('accepted')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "['binary', 'source'] ['binary']"
    assert out[1] == "accepted"


def test_pip_command_passes_the_allowance_before_the_separator() -> None:
    plain = pip_command("install", triple="x86_64-unknown-linux-gnu", python_version="3.11.7")
    assert plain[4:6] == ["--", "--isolated"]
    allowed = pip_command("install", triple="x86_64-unknown-linux-gnu",
                          python_version="3.11.7", sdists=("a", "b"))
    assert json.loads(allowed[4]) == ["a", "b"] and allowed[5] == "--"
    assert json.loads(pip_command("install", triple="x86_64-unknown-linux-gnu",
                                  python_version="3.11.7", sdists=True)[4]) is True


def test_build_paths_are_mapped_for_compilers(tmp_path: Path) -> None:
    from builder.sdist.build import path_maps

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    flags = path_maps({tmp_path / "link": "/usr/src/sdist"})
    assert flags["CFLAGS"] == (f"-ffile-prefix-map={tmp_path}/link=/usr/src/sdist "
                               f"-ffile-prefix-map={tmp_path}/real=/usr/src/sdist")
    assert flags["CXXFLAGS"] == flags["CFLAGS"]
    assert flags["RUSTFLAGS"].startswith(f"--remap-path-prefix={tmp_path}/link=/usr/src/sdist")


def test_a_cached_wheel_is_reused_without_an_interpreter(tmp_path: Path) -> None:
    from builder.sdist.build import build_or_reuse

    item = SdistInput(name="demo", version="1.0", archive=tmp_path / "demo-1.0.tar.gz",
                      sha256="a" * 64, build_system=BuildSystem(requires=(), backend="b"),
                      requires=(), deps=())
    key = cache_key(item, python_version="3.11.7", source_date_epoch=0)
    entry = tmp_path / "cache" / "sdist-wheels" / key
    entry.mkdir(parents=True)
    (entry / "demo-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")

    def no_python() -> Path:
        raise AssertionError("a cache hit needs no interpreter")

    built = build_or_reuse(item, python=no_python, python_version="3.11.7",
                           cache_dir=tmp_path / "cache", source_date_epoch=0, log=print)
    assert built.cached and built.pure and built.path == entry / "demo-1.0-py3-none-any.whl"
    import hashlib
    assert built.sha256 == hashlib.sha256(b"wheel bytes").hexdigest()


def test_a_wheel_is_built_in_owned_scratch_and_a_killed_builds_is_collected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend runs in a directory beside the cache's entries, owned by this build (its
    sandbox HOME in it too): what a build killed with SIGKILL left there goes at the next."""
    from factories import killed_claim

    from builder.sdist import build as sdist_build

    item = SdistInput(name="demo", version="1.0", archive=tmp_path / "demo-1.0.tar.gz",
                      sha256="a" * 64, build_system=BuildSystem(requires=(), backend="b"),
                      requires=(), deps=())
    wheels = tmp_path / "cache" / "sdist-wheels"
    left = killed_claim(wheels, prefix=".build-")
    seen: list[tuple[bool, bool]] = []

    def build_wheel(item: SdistInput, *, python: Path, work: Path,
                    source_date_epoch: int) -> Path:
        seen.append((work.parent == wheels, work.with_name(work.name + ".owner").is_file()))
        (work / "dist").mkdir()
        wheel = work / "dist" / "demo-1.0-py3-none-any.whl"
        wheel.write_bytes(b"wheel bytes")
        return wheel

    monkeypatch.setattr(sdist_build, "build_wheel", build_wheel)
    built = sdist_build.build_or_reuse(item, python=lambda: Path(sys.executable),
                                       python_version="3.11.7", cache_dir=tmp_path / "cache",
                                       source_date_epoch=0, log=lambda _: None)
    key = cache_key(item, python_version="3.11.7", source_date_epoch=0)
    assert seen == [(True, True)] and not built.cached
    assert built.path == wheels / key / "demo-1.0-py3-none-any.whl"
    assert not left.exists()
    assert sorted(p.name for p in wheels.iterdir()) == [f".{key}.lock", key]
