"""Locked wheels into a content-addressed cache, every hash enforced.

Cache entries live at ``<cache>/wheels/<sha256>/<filename>``. A miss is downloaded with pip
(``--require-hashes --no-deps``, target platform options, host pip configuration cut off) into
a temporary directory, hashed again by us, and renamed into place. A hit is hashed again
before use, so a tampered cache is refused with the expected and actual sha256.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from builder.errors import BuilderError, HashMismatchError
from builder.fsutil import rmtree, sha256_file
from builder.lock.model import LockedPackage, TargetLock
from builder.scratch import claimed_dir
from builder.tools.pip import isolated_pip_env, pip_command, pip_failure, target_options
from builder.tools.run import CommandRunner, run_command

WHEELS_DIR = "wheels"  # under the cache


def cache_path(cache_dir: Path, package: LockedPackage) -> Path:
    return cache_dir / WHEELS_DIR / package.sha256 / package.filename


def verify_wheel(path: Path, package: LockedPackage, *, where: str) -> None:
    actual = sha256_file(path)
    if actual != package.sha256:
        raise HashMismatchError(
            what=f"{package.name} {package.version} ({package.filename})",
            where=where,
            expected=package.sha256,
            actual=actual,
            hint=f"the file does not match the lock; delete {path} to download it again, "
            "or refresh the lock if the package was re-published",
        )


def fetch_wheels(
    target: TargetLock,
    *,
    index_url: str,
    glibc_floor: str,
    cache_dir: Path,
    runner: CommandRunner = run_command,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[Path, ...]:
    """Return the verified cached wheel of every locked package, in lock order (source
    distributions are left to the sdist builder)."""
    wheels = tuple(p for p in target.packages if not p.is_sdist)
    return fetch_packages(wheels, triple=target.target,
                          python_version=target.interpreter.python_version, index_url=index_url,
                          glibc_floor=glibc_floor, cache_dir=cache_dir, runner=runner, log=log)


def fetch_packages(
    packages: tuple[LockedPackage, ...],
    *,
    triple: str,
    python_version: str,
    index_url: str,
    glibc_floor: str,
    cache_dir: Path,
    runner: CommandRunner = run_command,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[Path, ...]:
    """``fetch_wheels`` for any set of locked packages (a kernels' wheelhouse: another Python)."""
    for package in packages:
        _clear_damaged(cache_path(cache_dir, package), log)
    missing = [p for p in packages if not cache_path(cache_dir, p).is_file()]
    if missing:
        log(f"downloading {len(missing)} of {len(packages)} wheels for {triple} "
            f"(Python {python_version})")
        _download(missing, triple=triple, python_version=python_version, index_url=index_url,
                  glibc_floor=glibc_floor, cache_dir=cache_dir, runner=runner)
    paths = []
    for package in packages:
        path = cache_path(cache_dir, package)
        verify_wheel(path, package, where=str(path))
        paths.append(path)
    return tuple(paths)


def _clear_damaged(path: Path, log: Callable[[str], None]) -> None:
    """A cache entry that is not a regular file (a directory, a FIFO, a dangling link put there
    by hand or by a crash) is removed, so it is downloaded again."""
    if not (path.is_symlink() or path.exists()) or (path.is_file() and not path.is_symlink()):
        return
    log(f"warning: the cache entry {path} is not a regular file: removing it to download the "
        "wheel again")
    try:
        if path.is_dir() and not path.is_symlink():
            rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise BuilderError(f"cannot remove a damaged cache entry: {exc.strerror or exc}",
                           where=str(path),
                           hint="remove it by hand, or choose another cache with "
                           "BUILDER_CACHE_DIR") from None


def _download(
    packages: list[LockedPackage],
    *,
    triple: str,
    python_version: str,
    index_url: str,
    glibc_floor: str,
    cache_dir: Path,
    runner: CommandRunner,
) -> None:
    # owned: a download cut short (SIGKILL) is removed by the next build's collect()
    with claimed_dir(cache_dir / WHEELS_DIR, prefix=".download-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(
            "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in packages),
            encoding="utf-8",
        )
        out = Path(tmp) / "out"
        argv = [
            *pip_command("download", triple=triple, python_version=python_version),
            "--no-deps",
            "--require-hashes",
            "--quiet",
            f"--dest={out}",
            *target_options(
                triple=triple,
                python_version=python_version,
                glibc_floor=glibc_floor,
                index_url=index_url,
            ),
            f"--requirement={requirements}",
        ]
        proc = runner(argv, env=isolated_pip_env(cache_dir))
        if proc.returncode != 0:
            raise pip_failure(proc, what=f"downloading wheels for {triple}",
                              where=index_url)
        for package in packages:
            got = out / package.filename
            if not got.is_file():
                raise BuilderError(
                    f"pip did not download {package.filename}",
                    where=index_url,
                    hint="the index no longer serves the locked file; refresh the lock",
                )
            verify_wheel(got, package, where=index_url)
            final = cache_path(cache_dir, package)
            final.parent.mkdir(parents=True, exist_ok=True)
            got.replace(final)
