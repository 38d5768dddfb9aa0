"""The recipe side of launching: [service] kind, [kernels], the wheelhouse in the lock."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from builder.errors import BuilderError, ValidationError
from builder.lock.codec import read_lock, write_lock
from builder.lock.model import InterpreterPin, Lock, LockedPackage, TargetLock, WheelhouseLock
from builder.locking.api import load_fresh_lock
from builder.locking.resolve import resolve_target
from builder.recipe import lock_digest, parse_recipe_text
from builder.recipe.model import ImagePython, ServiceKind

ROOT = Path(__file__).resolve().parents[3]
BASE = (ROOT / "recipes/tiny.toml").read_text()
JUPYTER = BASE + """
[service]
kind = "jupyter"
command = ["bin/jupyter-lab"]

[kernels]
image_python = "install"
wheelhouse = ["ipykernel==6.29.5"]
wheelhouse_pythons = ["3.12", "3.10"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_recipe_text(text, path="r.toml")
    return [p.render() for p in info.value.problems]


def test_a_jupyter_service_with_kernels() -> None:
    recipe = parse_recipe_text(JUPYTER, path="r.toml")
    assert recipe.service is not None and recipe.service.kind is ServiceKind.JUPYTER
    assert recipe.kernels is not None
    assert recipe.kernels.image_python is ImagePython.INSTALL
    assert recipe.kernels.wheelhouse_pythons == ("3.10", "3.12")  # sorted as versions


@pytest.mark.parametrize(("tail", "expected"), [
    ('\n[kernels]\nimage_python = "offer"\n',
     'r.toml:20: kernels: kernels need a Jupyter service ([service] kind = "jupyter")'),
    ('\n[service]\ncommand = ["bin/x"]\n[kernels]\n',
     'r.toml:22: kernels: kernels need a Jupyter service ([service] kind = "jupyter")'),
    ('\n[service]\nkind = "jupyter"\ncommand = ["/usr/bin/jupyter"]\n',
     "r.toml:22: service.command[0]: '/usr/bin/jupyter' is not a path inside the app "
     "(relative to /opt/apps/<name>, e.g. bin/jupyter-notebook)"),
    ('\n[service]\nkind = "web"\ncommand = ["bin/x"]\n',
     "r.toml:21: service.kind: 'web' is not one of: command, jupyter, code-server"),
    ('\n[service]\nkind = "jupyter"\ncommand = ["bin/x"]\n[kernels]\nimage_python = "install"\n',
     'r.toml:24: kernels.image_python: "install" needs kernels.wheelhouse (e.g. '
     '["ipykernel==6.29.5"]) and kernels.wheelhouse_pythons'),
    ('\n[service]\nkind = "jupyter"\ncommand = ["bin/x"]\n[kernels]\nwheelhouse = ["ipykernel"]\n'
     'wheelhouse_pythons = ["3.12", "3.12", "4"]\n',
     "r.toml:25: kernels.wheelhouse_pythons[2]: '4' is not a Python minor version like "
     '"3.12"'),
])
def test_kernel_problems_are_located(tail: str, expected: str) -> None:
    assert expected in problems(BASE + tail)


def test_only_the_wheelhouse_of_kernels_stales_the_lock() -> None:
    jupyter = parse_recipe_text(JUPYTER, path="r.toml")
    offer = parse_recipe_text(JUPYTER.replace('"install"', '"offer"'), path="r.toml")
    other = parse_recipe_text(JUPYTER.replace("6.29.5", "6.29.4"), path="r.toml")
    plain = parse_recipe_text(BASE, path="r.toml")
    assert lock_digest(offer) == lock_digest(jupyter) != lock_digest(other)
    without = parse_recipe_text(BASE + '\n[service]\nkind = "jupyter"\ncommand = ["bin/x"]\n',
                                path="r.toml")
    assert lock_digest(without) == lock_digest(plain), "no wheelhouse: the lock is as before"


def _lock() -> Lock:
    pin = InterpreterPin(release="20240107", python_version="3.11.7",
                         triple="x86_64-unknown-linux-gnu", flavor="install_only",
                         filename="cpython-3.11.7+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz",
                         url="https://example.invalid/c", sha256="a" * 64,
                         size=1)
    package = LockedPackage(name="ipykernel", version="6.29.5",
                            filename="ipykernel-6.29.5-py3-none-any.whl",
                            sha256="b" * 64, via=("-r recipe",))
    target = TargetLock(target="x86_64-unknown-linux-gnu", platform_tags=("manylinux2014_x86_64",),
                        interpreter=pin, packages=(package,),
                        wheelhouse=tuple(WheelhouseLock(python=v, python_version=f"{v}.0",
                                                        packages=(package,))
                                         for v in ("3.9", "3.10")))
    return Lock(recipe_name="demo", recipe_digest="sha256:x", python="3.11", glibc_floor="2.17",
                targets=(target,))


def test_the_wheelhouse_round_trips_through_the_lock_files(tmp_path: Path) -> None:
    lock = _lock()
    write_lock(lock, tmp_path, refresh_command="builder lock r")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lock.json", "x86_64-unknown-linux-gnu-wheelhouse-py3.10.txt",
        "x86_64-unknown-linux-gnu-wheelhouse-py3.9.txt", "x86_64-unknown-linux-gnu.txt"]
    assert read_lock(tmp_path, refresh_command="x") == lock
    text = (tmp_path / "x86_64-unknown-linux-gnu-wheelhouse-py3.10.txt").read_text()
    assert "the kernels' wheelhouse for an image's CPython 3.10" in text
    assert f"ipykernel==6.29.5 \\\n    --hash=sha256:{'b' * 64}" in text
    txt = tmp_path / "x86_64-unknown-linux-gnu-wheelhouse-py3.9.txt"
    txt.write_text(txt.read_text().replace("6.29.5", "6.29.4"))
    with pytest.raises(BuilderError, match=r"does not match lock\.json"):
        read_lock(tmp_path, refresh_command="x")


class FakePip:
    def __init__(self) -> None:
        self.versions: list[str] = []

    def __call__(self, argv: Sequence[str], *, env: Mapping[str, str]
                 ) -> subprocess.CompletedProcess[str]:
        version = next(a for a in argv if a.startswith("--python-version=")).split("=")[1]
        self.versions.append(version)
        name = "ipykernel" if "ipykernel==6.29.5" in argv else "pyjokes"
        report = {"install": [{
            "metadata": {"name": name, "version": "1"}, "requested": True,
            "download_info": {"url": f"https://x/{name}-1-py3-none-any.whl",
                              "archive_info": {"hashes": {"sha256": "c" * 64}}}}]}
        report_arg = next(a for a in argv if a.startswith("--report="))
        Path(report_arg.split("=", 1)[1]).write_text(json.dumps(report))
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_the_wheelhouse_is_resolved_for_every_image_python(tmp_path: Path) -> None:
    recipe = parse_recipe_text(JUPYTER, path="r.toml")
    pin = _lock().targets[0].interpreter
    fake = FakePip()
    target = resolve_target(recipe, pin, cache_dir=tmp_path, runner=fake)
    assert fake.versions == ["3.11.7", "3.10.0", "3.12.0"]
    assert [(w.python, w.python_version, w.packages[0].name) for w in target.wheelhouse] == [
        ("3.10", "3.10.0", "ipykernel"), ("3.12", "3.12.0", "ipykernel")]


@pytest.mark.parametrize("name", ["jupyter-6", "jupyterlab-4"])
def test_committed_jupyter_locks_are_fresh_and_carry_the_wheelhouse(name: str) -> None:
    path = ROOT / "recipes" / f"{name}.toml"
    recipe = parse_recipe_text(path.read_text(), path=str(path))
    lock = load_fresh_lock(recipe, lock_dir=ROOT / "lockfiles" / name)
    assert recipe.kernels is not None
    for target in lock.targets:
        assert [w.python for w in target.wheelhouse] == list(recipe.kernels.wheelhouse_pythons)
        for entry in target.wheelhouse:
            names = {p.name: p for p in entry.packages}
            assert names["ipykernel"].version == "6.29.5"
            assert "pyzmq" in names and len(names["pyzmq"].sha256) == 64
            tag = "cp" + entry.python.replace(".", "")
            assert tag in names["pyzmq"].filename or "abi3" in names["pyzmq"].filename
