"""A step that writes the staging path: relocation's scan fails and names the step."""

from __future__ import annotations

import sys
from pathlib import Path

from builder.relocate import leftover_error, scan_for_paths
from builder.steps import run_build_steps


def test_the_leftover_error_names_the_step_that_wrote_the_file(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    app = stage / "bundle" / "app"
    (app / "python" / "bin").mkdir(parents=True)
    (app / "python" / "bin" / "python3").symlink_to(sys.executable)
    (app / "share").mkdir()
    (app / "share" / "installed.txt").write_text(f"{stage}/from the installer\n")
    report = run_build_steps(
        [("python3", "-c", "import json, os; json.dump({'root': os.getcwd()}, "
          "open('share/config.json', 'w'))")],
        app=app, python_bin=app / "python" / "bin", source_date_epoch=0, where="r.toml",
        log=lambda _line: None, scratch=stage, offline=False)
    hits = scan_for_paths(app, (str(stage),))
    error = leftover_error(app, hits, report.origins())
    assert error.what == (
        f"2 files still contain the staging path ({stage}) after relocation:\n"
        "  share/config.json (written by build step 1 (python3 -c import json, os; "
        "json.dump({'root': os.getcwd()}, open('share/conf...))\n"
        "  share/installed.txt")
    assert error.hint is not None and error.hint.startswith(
        "a build step wrote the path the app has during the build: make it write paths "
        "relative to the app, or compute them at run time; otherwise these files would break")
    plain = leftover_error(app, hits)
    assert "written by" not in plain.what and plain.hint is not None
    assert plain.hint.startswith("these files would break")
