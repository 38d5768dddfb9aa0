"""The README's ``docker run`` commands as tests/integration/test_podman.py reads and runs them:
found, parsed word for word, and changed only where the host or the harness needs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from podman_engine import (
    HOST_FLAGS,
    ReadmeCommandError,
    parse_docker_run,
    readme_docker_run,
    readme_docker_runs,
)

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_documents_one_command_per_app_on_the_recipes_ports() -> None:
    runs = readme_docker_runs(README)
    assert {run.app_volume[1] for run in runs} == {"/opt/apps/jupyter-6", "/opt/apps/vscode"}
    jupyter = readme_docker_run(README, "jupyter-6")
    assert jupyter.argv == ("/opt/apps/jupyter-6/bin/launch",)
    assert ("--read-only", None) in jupyter.options and ("--user", "1000:1000") in jupyter.options


def test_for_podman_changes_only_the_host_flags_image_port_and_pwd(tmp_path: Path) -> None:
    run = parse_docker_run(
        ["--rm", "-p", "8888:8888", "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp",
         "-v", "$PWD/jupyter-6/app:/opt/apps/jupyter-6:ro", "-e", "JUPYTER_TOKEN=t",
         "debian:bookworm-slim", "/opt/apps/jupyter-6/bin/launch", "--port", "8888"])
    assert run.container_port == 8888
    words = run.for_podman(image="localhost/minbase", host_port=40001, name="c1", cwd=tmp_path)
    assert words == ["run", *HOST_FLAGS, "--name", "c1", "--rm", "-p", "127.0.0.1:40001:8888",
                     "--user", "1000:1000", "--read-only", "--tmpfs", "/tmp",
                     "-v", f"{tmp_path}/jupyter-6/app:/opt/apps/jupyter-6:ro",
                     "-e", "JUPYTER_TOKEN=t", "localhost/minbase",
                     "/opt/apps/jupyter-6/bin/launch", "--port", "8888"]
    lab = run.renamed("jupyter-6", "jupyterlab-4")
    assert lab.app_volume == ("$PWD/jupyterlab-4/app", "/opt/apps/jupyterlab-4")
    mount = ("--mount", "type=image,source=r/x@sha256:ab,destination=/opt/apps/jupyter-6")
    imaged = run.for_podman(image="i", host_port=1, name="c", cwd=tmp_path, app_mount=mount)
    assert "-v" not in imaged and imaged[imaged.index("--mount") + 1] == mount[1]


@pytest.mark.parametrize("words", [
    ["--privileged", "img"],  # an option the harness does not know: refused, not guessed
    ["--rm", "-p", "8888:8888"],  # no image
])
def test_commands_the_harness_cannot_read_are_refused(words: list[str]) -> None:
    with pytest.raises(ReadmeCommandError):
        parse_docker_run(words)
