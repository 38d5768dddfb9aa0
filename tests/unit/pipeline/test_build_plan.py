"""The build plan: target order, phases, and the input digest a bundle is named after."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from factories import make_lock

from builder.errors import BuilderError
from builder.lock.model import Lock, LockedPackage, SdistLock
from builder.pipeline.plan import (
    Phase,
    code_digest,
    input_digest,
    phases_for,
    plan_target,
    select_targets,
)
from builder.recipe import parse_recipe_text

ROOT = Path(__file__).resolve().parents[3]
BASE = (ROOT / "recipes" / "tiny.toml").read_text()
X86, ARM = "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"


def recipe(extra: str = "", base: str = BASE):  # type: ignore[no-untyped-def]
    return parse_recipe_text(base + extra, path="recipes/tiny.toml")


def lock() -> Lock:
    return make_lock("sha256:x")


def digest(r=None, lk=None, *, target: str = X86, sha: str = "a" * 64, epoch: int = 0,  # type: ignore[no-untyped-def]
           host: str = "x86_64", launch: str | None = None) -> str:
    lk = lk or lock()
    t = lk.for_target(target)
    assert t is not None
    return input_digest(r or recipe(), lk, t, interpreter_sha256=sha, source_date_epoch=epoch,
                        host_arch=host, launch_digest=launch)


def test_the_host_target_is_built_first() -> None:
    r = recipe()
    assert select_targets(r, (), host_arch="x86_64") == (X86,)
    assert select_targets(r, ("all",), host_arch="x86_64") == (X86, ARM)
    assert select_targets(r, ("all",), host_arch="aarch64") == (ARM, X86)
    assert select_targets(r, (X86, ARM, X86), host_arch="x86_64") == (X86, ARM)


def test_unknown_targets_are_refused() -> None:
    with pytest.raises(BuilderError, match="target riscv64-x is not in the recipe"):
        select_targets(recipe(), ("riscv64-x",), host_arch="x86_64")
    only_arm = recipe(base=BASE.replace(f'"{X86}", ', "").replace(f', "{X86}"', ""))
    with pytest.raises(BuilderError, match=r"this machine's target .* is not in the recipe"):
        select_targets(only_arm, (), host_arch="x86_64")


def test_phases_follow_the_recipe() -> None:
    lk = lock()
    target = lk.for_target(X86)
    assert target is not None
    plain = phases_for(recipe(), target)
    assert plain == (Phase.INSTALL, Phase.RELOCATE, Phase.DESCRIBE, Phase.CHECKS, Phase.ARCHIVE)
    unchecked = phases_for(recipe("\n[checks]\nimports = false\n"), target)
    assert Phase.CHECKS not in unchecked
    stepped = phases_for(recipe('\n[build]\nsteps = [["x"]]\n'), target)
    assert stepped.index(Phase.STEPS) == stepped.index(Phase.INSTALL) + 1
    assert stepped.index(Phase.STEPS) < stepped.index(Phase.RELOCATE)
    sdist = LockedPackage(name="d", version="1", filename="d-1.tar.gz", sha256="d" * 64,
                          via=(), url="file:///d-1.tar.gz")
    with_sdist = dataclasses.replace(target, packages=(*target.packages, sdist))
    assert phases_for(recipe(), with_sdist)[0] is Phase.SDISTS


def test_every_input_moves_the_digest() -> None:
    base = digest()
    lk = lock()
    edited = dataclasses.replace(lk, targets=tuple(
        dataclasses.replace(t, packages=t.packages[:1]) for t in lk.targets))
    variants = {
        "recipe": digest(recipe('\n[build]\nsteps = [["x"]]\n')),
        "lock": digest(lk=edited),
        "interpreter": digest(sha="b" * 64),
        "epoch": digest(epoch=1),
        "launch": digest(launch="sha256:l"),
        "target": digest(target=ARM),
    }
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)
    assert digest() == base  # and nothing else (time, paths) enters it


def test_sdists_enter_the_digest_with_this_machines_build_dependencies() -> None:
    lk = lock()
    sdist = LockedPackage(name="d", version="1", filename="d-1.tar.gz", sha256="d" * 64,
                          via=(), url="file:///d-1.tar.gz")
    dep = LockedPackage(name="setuptools", version="80", filename="s.whl", sha256="e" * 64,
                        via=())
    other = dataclasses.replace(dep, sha256="f" * 64)

    def with_deps(x86: LockedPackage, arm: LockedPackage) -> Lock:
        entry = SdistLock(name="d", version="1", filename="d-1.tar.gz", url="file:///d",
                          sha256="d" * 64, backend="b", backend_path=(), requires=("s",),
                          build_deps=(("aarch64", (arm,)), ("x86_64", (x86,))))
        return dataclasses.replace(lk, sdists=(entry,), targets=tuple(
            dataclasses.replace(t, packages=(*t.packages, sdist)) for t in lk.targets))

    here = digest(lk=with_deps(dep, dep))
    assert digest(lk=with_deps(dep, other)) == here  # another machine's deps: not ours
    assert digest(lk=with_deps(other, dep)) != here
    assert digest(lk=with_deps(dep, other), host="aarch64") != here


def test_plan_names_the_files(tmp_path: Path) -> None:
    lk = lock()
    target = lk.for_target(X86)
    assert target is not None
    plan = plan_target(recipe(), lk, target, out_dir=tmp_path, interpreter_sha256="a" * 64,
                       source_date_epoch=0, host_arch="x86_64", launch_digest=None)
    assert plan.stem == f"tiny-1.0-{X86}-{plan.digest.split(':')[1][:16]}"
    assert plan.archive == tmp_path / f"{plan.stem}.tar.zst"
    assert plan.sidecar == tmp_path / f"{plan.stem}.json"
    assert plan.sbom.name == f"{plan.stem}.cdx.json"


def test_builders_own_code_is_an_input(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not code\n")
    first = code_digest.__wrapped__(tmp_path)
    (tmp_path / "pkg" / "notes.txt").write_text("still not code\n")
    assert code_digest.__wrapped__(tmp_path) == first
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert code_digest.__wrapped__(tmp_path) != first
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "b.json").write_text("{}\n")
    assert code_digest.__wrapped__(tmp_path) != first
    assert code_digest() == code_digest()  # the real package: stable within a run


def test_the_icon_files_bytes_are_an_input() -> None:
    r, lk = recipe(), lock()
    t = lk.for_target(X86)
    assert t is not None

    def with_icon(sha: str | None) -> str:
        return input_digest(r, lk, t, interpreter_sha256="a" * 64, source_date_epoch=0,
                            host_arch="x86_64", launch_digest=None, icon_sha256=sha)

    assert with_icon(None) == digest(r, lk)
    assert len({with_icon(None), with_icon("1" * 64), with_icon("2" * 64)}) == 3
