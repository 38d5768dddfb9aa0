"""Build a wheel from a source distribution: offline, isolated, reproducible.

The build environment is a venv made from a given interpreter (at build time: the bundle's own
interpreter of the build machine's architecture) with exactly the locked build dependencies
installed from hash-checked wheels; the PEP 517 hooks run through :mod:`builder.sandbox` (no
network, fresh HOME, no host pip or Python settings, ``SOURCE_DATE_EPOCH``, umask 022). Results
are cached under ``<cache>/sdist-wheels/<key>/`` where the key covers every input of the wheel's
bytes (the sdist, the build dependencies, the backend, the interpreter, SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

import email.parser
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version
from pyproject_hooks import BackendUnavailable, BuildBackendHookCaller, HookMissing

from builder.errors import BuilderError
from builder.fsutil import canonical_json, rmtree, sha256_bytes, sha256_file
from builder.install import install_wheels
from builder.sandbox import Sandbox, failure, run, sandbox
from builder.scratch import claimed_dir, collect
from builder.sdist.source import BuildSystem, unpack_sdist

T = TypeVar("T")

SDIST_BUILD_FORMAT = 1  # bump when the way wheels are built changes their bytes
HOOK_TIMEOUT = 1800.0  # seconds for one PEP 517 hook (a native build can be long)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltWheel:
    path: Path
    sha256: str
    pure: bool  # py3-none-any style: serves every target
    cached: bool
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SdistInput:
    """One source distribution to build and what it may use."""

    name: str  # canonical
    version: str
    archive: Path  # hash-checked by the caller
    sha256: str
    build_system: BuildSystem
    requires: tuple[str, ...]  # the locked build requirements (static + dynamic)
    deps: tuple[tuple[Path, str], ...]  # the locked build dependencies' wheels and sha256


def cache_key(item: SdistInput, *, python_version: str, source_date_epoch: int) -> str:
    return sha256_bytes(canonical_json({
        "format": SDIST_BUILD_FORMAT,
        "sdist": item.sha256,
        "backend": item.build_system.backend,
        "backend_path": list(item.build_system.backend_path),
        "deps": sorted(sha for _path, sha in item.deps),
        "python": python_version,
        "source_date_epoch": source_date_epoch,
    }).encode())


def wheel_is_pure(wheel: Path) -> bool:
    """Every tag of the wheel is platform ``any`` and ABI ``none`` (it serves every target)."""
    tags = parse_wheel_filename(wheel.name)[3]
    return all(t.platform == "any" and t.abi == "none" for t in tags)


def build_or_reuse(item: SdistInput, *, python: Callable[[], Path], python_version: str,
                   cache_dir: Path, source_date_epoch: int,
                   log: Callable[[str], None]) -> BuiltWheel:
    """The wheel of ``item``, from the cache or built now with the interpreter ``python()``
    returns (called only on a cache miss: it may have to fetch one)."""
    key = cache_key(item, python_version=python_version, source_date_epoch=source_date_epoch)
    entry = cache_dir / "sdist-wheels" / key
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(entry.parent / f".{key}.lock")):  # two builds: one builds, one waits
        found = sorted(entry.glob("*.whl")) if entry.is_dir() else []
        if len(found) == 1:
            return BuiltWheel(path=found[0], sha256=sha256_file(found[0]),
                              pure=wheel_is_pure(found[0]), cached=True, seconds=0.0)
        return _build_into(item, entry, python=python, source_date_epoch=source_date_epoch,
                           log=log)


def _build_into(item: SdistInput, entry: Path, *, python: Callable[[], Path],
                source_date_epoch: int, log: Callable[[str], None]) -> BuiltWheel:
    key = entry.name
    start = time.monotonic()
    # owned scratch beside the entries: what a killed build left there is collected first
    collect(entry.parent)
    with claimed_dir(entry.parent, prefix=f".build-{key[:12]}-") as work:
        wheel = build_wheel(item, python=python(), work=work,
                            source_date_epoch=source_date_epoch)
        staged = work / "result"
        staged.mkdir()
        final_wheel = staged / wheel.name
        wheel.replace(final_wheel)
        if entry.exists():  # an incomplete entry (no single wheel in it)
            rmtree(entry)
        staged.rename(entry)  # atomic: the entry appears whole or not at all
    path = entry / wheel.name
    seconds = time.monotonic() - start
    log(f"built {path.name} from {item.archive.name} ({seconds:.1f}s)")
    return BuiltWheel(path=path, sha256=sha256_file(path), pure=wheel_is_pure(path),
                      cached=False, seconds=seconds)


def build_wheel(item: SdistInput, *, python: Path, work: Path, source_date_epoch: int) -> Path:
    """Unpack, make the build environment, ask the backend, build; returns the wheel in
    ``work/dist``."""
    where = f"{item.name} {item.version} ({item.archive.name})"
    project = unpack_sdist(item.archive, work / "src")
    env_dir = work / "env"
    maps = path_maps({work: "/usr/src/sdist", python.parent.parent: "/usr/lib/python"})
    out = work / "dist"
    with _backend(project, item.build_system, python=python, env_dir=env_dir, deps=item.deps,
                  source_date_epoch=source_date_epoch, where=where, extra_env=maps) as hooks:
        wanted = _quiet(hooks.get_requires_for_build_wheel, {})
        missing = unmet_requirements(wanted, installed=installed_versions(env_dir))
        if missing:
            raise BuilderError(
                f"the build backend of {where} asks for {', '.join(missing)}, which the "
                "lock does not pin", where=where,
                hint="lock again (builder lock RECIPE) so its build dependencies are "
                "resolved anew")
        out.mkdir()
        name = _quiet(hooks.build_wheel, str(out), {})
    wheel = out / name
    if not wheel.is_file() or not name.endswith(".whl"):
        raise BuilderError(f"the build backend of {where} returned no wheel ({name!r})",
                           where=where)
    _check_wheel_matches(wheel, item, where=where)
    return wheel


def path_maps(maps: Mapping[Path, str]) -> dict[str, str]:
    """Compiler flags that record build paths under fixed names (reproducible-builds.org's
    ``-ffile-prefix-map``): native code built in a temporary directory against the staged
    interpreter's headers must not carry either path (debug info, ``__FILE__``)."""
    pairs = sorted({(str(old), new) for path, new in maps.items()
                    for old in (path, path.resolve())})
    flags = " ".join(f"-ffile-prefix-map={old}={new}" for old, new in pairs)
    rust = " ".join(f"--remap-path-prefix={old}={new}" for old, new in pairs)
    return {"CFLAGS": flags, "CXXFLAGS": flags, "RUSTFLAGS": rust}


def make_build_env(python: Path, env_dir: Path, deps: Sequence[tuple[Path, str]], *,
                   box: Sandbox, where: str) -> Path:
    """A venv from ``python`` holding exactly ``deps`` (installed without pip, offline)."""
    outcome = run(box, [str(python), "-m", "venv", "--without-pip", str(env_dir)],
                  cwd=box.home, timeout=120)
    if outcome.returncode != 0:
        raise failure(outcome, what="making the build environment", where=where)
    minor = ".".join(python_version_of(env_dir).split(".")[:2])
    install_wheels(list(deps), python_dir=env_dir, minor=minor)
    return env_dir / "bin" / "python"


def python_version_of(env_dir: Path) -> str:
    """``version`` (or ``version_info``) of the venv's pyvenv.cfg."""
    for line in (env_dir / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return value.strip()
    raise BuilderError("the build environment has no Python version in pyvenv.cfg",
                       where=str(env_dir))


def installed_versions(env_dir: Path) -> dict[str, str]:
    """Canonical name -> version of what the build environment holds."""
    found: dict[str, str] = {}
    parser = email.parser.HeaderParser()
    for metadata in env_dir.glob("lib/python3*/site-packages/*.dist-info/METADATA"):
        headers = parser.parsestr(metadata.read_text(encoding="utf-8", errors="replace"),
                                  headersonly=True)
        if headers["Name"] and headers["Version"]:
            found[canonicalize_name(headers["Name"])] = str(headers["Version"])
    return found


def unmet_requirements(wanted: Sequence[str], *, installed: Mapping[str, str]) -> list[str]:
    """The requirements of ``wanted`` (markers evaluated here) that ``installed`` misses."""
    missing = []
    for text in wanted:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(text)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = installed.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            missing.append(text)
    return missing


def _quiet(hook: Callable[..., T], *args: Any) -> T:
    """Call a hook; the backend's warnings (deprecations of the project's setup.py, which
    pyproject_hooks re-raises here) are the project's business, not the build's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hook(*args)


def _hook_runner(box: Sandbox, *, where: str) -> Callable[..., None]:
    def runner(cmd: Sequence[str], cwd: str | None = None,
               extra_environ: Mapping[str, str] | None = None) -> None:
        outcome = run(box, cmd, cwd=Path(cwd or box.home), timeout=HOOK_TIMEOUT,
                      env=extra_environ)
        if outcome.returncode != 0:
            hook = cmd[2] if len(cmd) > 2 else "hook"
            raise failure(outcome, what=f"the build backend's {hook}", where=where,
                          hint="the sdist does not build offline from its locked build "
                          "dependencies; see the output above")
    return runner


def _check_wheel_matches(wheel: Path, item: SdistInput, *, where: str) -> None:
    name, version, _build, _tags = parse_wheel_filename(wheel.name)
    if canonicalize_name(name) != item.name or version != Version(item.version):
        raise BuilderError(f"the build produced {wheel.name}, not {item.name} {item.version}",
                           where=where, hint="the sdist's metadata disagrees with the lock")
    try:
        with zipfile.ZipFile(wheel) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise BuilderError(f"the built wheel is not a zip: {exc}", where=where) from exc
    if bad is not None:
        raise BuilderError(f"the built wheel is corrupt at {bad}", where=where)


def requires_for_build(project: Path, build_system: BuildSystem, *, python: Path,
                       env_dir: Path, deps: Sequence[tuple[Path, str]], source_date_epoch: int,
                       where: str) -> list[str]:
    """What the backend asks for beyond ``requires`` (``get_requires_for_build_wheel``), run in
    a build environment holding ``deps`` (used by ``builder lock``)."""
    with _backend(project, build_system, python=python, env_dir=env_dir, deps=deps,
                  source_date_epoch=source_date_epoch, where=where) as hooks:
        return [str(r) for r in _quiet(hooks.get_requires_for_build_wheel, {})]


@contextmanager
def _backend(project: Path, build_system: BuildSystem, *, python: Path, env_dir: Path,
             deps: Sequence[tuple[Path, str]], source_date_epoch: int, where: str,
             extra_env: Mapping[str, str] | None = None) -> Iterator[BuildBackendHookCaller]:
    """The project's PEP 517 hooks, run by a venv of ``python`` holding exactly ``deps``, in a
    sandbox (no network); a backend that cannot be loaded becomes one clear error."""
    with sandbox(path=(env_dir / "bin",), source_date_epoch=source_date_epoch,
                 parent=env_dir.parent, extra_env=extra_env) as box:
        env_python = make_build_env(python, env_dir, deps, box=box, where=where)
        hooks = BuildBackendHookCaller(str(project), build_system.backend,
                                       backend_path=list(build_system.backend_path),
                                       runner=_hook_runner(box, where=where),
                                       python_executable=str(env_python))
        try:
            yield hooks
        except (BackendUnavailable, HookMissing) as exc:
            raise BuilderError(f"the build backend {build_system.backend!r} of {where} "
                               f"cannot be used: {exc}", where=where,
                               hint="check the sdist's [build-system] and the lock") from exc
