from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from builder.errors import BuilderError
from builder.lock.model import InterpreterPin
from builder.locking.resolve import packages_from_report, resolve_target
from builder.recipe import parse_recipe_text
from builder.tools.pip import isolated_pip_env, platform_tags, target_environment

RECIPE = """\
format_version = 1
[app]
name = "demo"
version = "1"
[runtime]
python = "3.11"
pbs_release = "20240107"
[packages]
requirements = ["top[extra]==1.0"]
[targets]
triples = ["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"]
glibc_floor = "2.17"
"""

PIN = InterpreterPin(
    release="20240107", python_version="3.11.7", triple="aarch64-unknown-linux-gnu",
    flavor="install_only", filename="cpython.tar.gz", url="https://example.invalid/c.tar.gz",
    sha256="0" * 64, size=None,
)


def test_platform_tags_never_exceed_the_floor() -> None:
    tags = platform_tags("x86_64-unknown-linux-gnu", "2.17")
    assert tags[:2] == ("manylinux_2_17_x86_64", "manylinux2014_x86_64")
    assert tags[-2:] == ("manylinux_2_5_x86_64", "manylinux1_x86_64")
    assert "manylinux2010_x86_64" in tags
    assert not any("2_28" in t or t.startswith("linux_") for t in tags)
    assert platform_tags("aarch64-unknown-linux-gnu", "2.28") == tuple(
        tag for minor in range(28, 16, -1)
        for tag in ([f"manylinux_2_{minor}_aarch64"]
                    + (["manylinux2014_aarch64"] if minor == 17 else []))
    )


def test_target_environment_is_the_targets_not_the_hosts() -> None:
    env = target_environment("aarch64-unknown-linux-gnu", "3.11.7")
    assert env["platform_machine"] == "aarch64"
    assert env["python_version"] == "3.11"
    assert env["python_full_version"] == "3.11.7"
    assert env["platform_release"] == "" and env["platform_version"] == ""


def test_pip_environment_drops_host_pip_settings() -> None:
    host = {"PIP_FIND_LINKS": "/opt/wheels", "PIP_CONSTRAINT": "/etc/c.txt", "PATH": "/usr/bin",
            "PYTHONPATH": "/junk", "VIRTUAL_ENV": "/venv", "HOME": "/root"}
    env = isolated_pip_env(Path("/cache"), host)
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert "PIP_FIND_LINKS" not in env and "PIP_CONSTRAINT" not in env
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env
    assert env["PATH"] == "/usr/bin"
    assert env["PIP_CACHE_DIR"] == "/cache/pip"


def _item(name: str, version: str, requires: list[str], *, requested: bool = False,
          extras: list[str] | None = None, url: str | None = None) -> dict[str, object]:
    filename = f"{name}-{version}-py3-none-any.whl"
    return {
        "metadata": {"name": name, "version": version, "requires_dist": requires},
        "requested": requested,
        "requested_extras": extras or [],
        "download_info": {
            "url": url or f"https://files.example.invalid/{filename}",
            "archive_info": {"hashes": {"sha256": name[0] * 64}},
        },
    }


REPORT = {
    "install": [
        _item("Top", "1.0", ["dep-a>=1", "dep-b; extra == 'extra'",
                             "arm-only; platform_machine == 'aarch64'",
                             "x86-only; platform_machine == 'x86_64'"],
              requested=True, extras=["extra"]),
        _item("dep_a", "2.0", ["dep-b"]),
        _item("dep-b", "3.0", []),
        _item("arm-only", "1.0", []),
    ]
}


def test_report_becomes_sorted_packages_with_via_edges() -> None:
    env = target_environment("aarch64-unknown-linux-gnu", "3.11.7")
    packages = packages_from_report(REPORT, environment=env, where="r.toml")
    assert [(p.name, p.version, p.via) for p in packages] == [
        ("arm-only", "1.0", ("top",)),
        ("dep-a", "2.0", ("top",)),
        ("dep-b", "3.0", ("dep-a", "top")),
        ("top", "1.0", ("-r recipe",)),
    ]
    assert packages[0].filename == "arm-only-1.0-py3-none-any.whl"
    assert packages[0].sha256 == "a" * 64


def test_report_without_hash_is_refused() -> None:
    report = {"install": [_item("x", "1", [], requested=True)]}
    report["install"][0]["download_info"] = {"url": "https://x.invalid/x-1.whl"}  # type: ignore[index]
    with pytest.raises(BuilderError, match="the index gave no sha256 for x"):
        packages_from_report(report, environment={}, where="r.toml")


class FakePip:
    """Stands in for the pip child process: records argv/env, writes a canned report."""

    def __init__(self, report: Mapping[str, object], returncode: int = 0) -> None:
        self.report = report
        self.returncode = returncode
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], *, env: Mapping[str, str]
                 ) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), dict(env)))
        report_arg = next(a for a in argv if a.startswith("--report="))
        Path(report_arg.split("=", 1)[1]).write_text(json.dumps(self.report))
        return subprocess.CompletedProcess(argv, self.returncode, "", "ERROR: no match\n")


def test_resolve_target_runs_pip_for_the_target(tmp_path: Path) -> None:
    recipe = parse_recipe_text(RECIPE, path="r.toml")
    fake = FakePip(REPORT)
    lock = resolve_target(recipe, PIN, cache_dir=tmp_path, runner=fake)
    assert lock.target == "aarch64-unknown-linux-gnu"
    assert [p.name for p in lock.packages] == ["arm-only", "dep-a", "dep-b", "top"]
    (argv, env), = fake.calls
    assert argv[1:3] == ["-m", "builder.tools.pip_target"]
    assert json.loads(argv[3])["platform_machine"] == "aarch64"
    assert argv[4:7] == ["--", "--isolated", "install"]
    for flag in ("--dry-run", "--ignore-installed", "--only-binary=:all:",
                 "--platform=manylinux2014_aarch64", "--python-version=3.11.7",
                 "--abi=cp311", "--index-url=https://pypi.org/simple"):
        assert flag in argv
    assert argv[-1] == "top[extra]==1.0"
    assert env["PIP_CONFIG_FILE"] == "/dev/null"


def test_pip_failure_is_wrapped_with_its_message(tmp_path: Path) -> None:
    recipe = parse_recipe_text(RECIPE, path="r.toml")
    with pytest.raises(BuilderError) as info:
        resolve_target(recipe, PIN, cache_dir=tmp_path, runner=FakePip(REPORT, returncode=1))
    assert "resolving for aarch64-unknown-linux-gnu failed (pip exit code 1)" in str(info.value)
    assert "| ERROR: no match" in str(info.value)


class SdistOnlyPip:
    """pip that finds nothing for ``top`` unless its sdists are allowed (the retry)."""

    def __init__(self, *, retry_resolves: bool = True) -> None:
        self.calls: list[list[str]] = []
        self.retry_resolves = retry_resolves

    def __call__(self, argv: Sequence[str], *, env: Mapping[str, str]
                 ) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        split = argv.index("--")
        allowed = json.loads(argv[4]) if split == 5 else False
        if allowed and "top" in allowed and self.retry_resolves:
            report_arg = next(a for a in argv if a.startswith("--report="))
            Path(report_arg.split("=", 1)[1]).write_text(json.dumps({"install": [{
                "metadata": {"name": "Top", "version": "1.0"}, "requested": True,
                "download_info": {"url": "https://files.example/top-1.0.tar.gz",
                                  "archive_info": {"hashes": {"sha256": "ab" * 32}}}}]}))
            return subprocess.CompletedProcess(argv, 0, "", "")
        return subprocess.CompletedProcess(
            argv, 1, "", "ERROR: Could not find a version that satisfies the requirement "
            "top==1.0 (from versions: none)\nERROR: No matching distribution found for "
            "top==1.0\n")


def test_a_version_published_only_as_sdist_is_named_with_the_fix(tmp_path: Path) -> None:
    recipe = parse_recipe_text(RECIPE, path="r.toml")
    fake = SdistOnlyPip()
    with pytest.raises(BuilderError) as info:
        resolve_target(recipe, PIN, cache_dir=tmp_path, runner=fake)
    assert str(info.value) == (
        "r.toml: top 1.0 is published only as a source distribution (top-1.0.tar.gz) for this "
        "target, and the recipe does not allow sdists\n"
        '  hint: allow it in the recipe: packages.allow_sdists = ["top"] (builder then builds '
        "its wheel offline from locked build dependencies), or pin a version that has a wheel")
    first, retry = fake.calls
    assert first[4] == "--" and json.loads(retry[4]) == ["top"]
    assert [a for a in retry if not a.startswith("--report=")][5:] == \
        [a for a in first if not a.startswith("--report=")][4:]


def test_no_wheel_and_no_sdist_keeps_pips_own_message(tmp_path: Path) -> None:
    recipe = parse_recipe_text(RECIPE, path="r.toml")
    with pytest.raises(BuilderError) as info:
        resolve_target(recipe, PIN, cache_dir=tmp_path,
                       runner=SdistOnlyPip(retry_resolves=False))
    assert "failed (pip exit code 1)" in str(info.value)
    assert "No matching distribution found for top==1.0" in str(info.value)


@pytest.mark.parametrize(("allow", "expected"),
                         [("true", True), ('["Top_X", "b"]', ["b", "top-x"])])
def test_allowed_sdists_reach_pip(tmp_path: Path, allow: str, expected: object) -> None:
    recipe = parse_recipe_text(RECIPE.replace("[targets]", f"allow_sdists = {allow}\n[targets]"),
                               path="r.toml")
    fake = FakePip({"install": [{
        "metadata": {"name": "top", "version": "1.0"}, "requested": True,
        "download_info": {"url": "https://files.example/p/top-1.0.tar.gz#sha256=x",
                          "archive_info": {"hashes": {"sha256": "cd" * 32}}}}]})
    lock = resolve_target(recipe, PIN, cache_dir=tmp_path, runner=fake)
    (argv, _env), = fake.calls
    assert json.loads(argv[4]) == expected and argv[5] == "--"
    assert "--only-binary=:all:" in argv  # every other project stays wheels-only
    (top,) = lock.packages
    assert top.is_sdist and top.url == "https://files.example/p/top-1.0.tar.gz"
