"""The launcher on this machine (no isolation needed): the first launch installs ipykernel for
the image's Python from the bundled wheelhouse, offline; root needs --allow-root; one
version-specific Jupyter configuration."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from servers import pyenv_prefix
from test_build import extract
from test_launch import TOKEN, Jupyter, Started, free_port, stop

from builder.bundle.archive import read_member

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OFFLINE = {  # any attempt to reach an index or a proxy fails at once
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "http://127.0.0.1:9/",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def app6(jupyter_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract(jupyter_bundle, tmp_path_factory.mktemp("host") / "bundle") / "app"


def pyenv_python(version: str) -> Path:
    prefix = pyenv_prefix(version)
    if prefix is None or not (prefix / "bin" / "python3").exists():
        pytest.skip(f"pyenv CPython {version} is not installed")
    return prefix / "bin"


def launch(app: Path, args: list[str], env: dict[str, str], log: Path) -> Started:
    with log.open("wb") as out:
        proc = subprocess.Popen([str(app / "bin/launch"), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Started(proc=proc, log=log)


def test_first_start_installs_ipykernel_for_the_image_python_offline(app6: Path,
                                                                     tmp_path: Path) -> None:
    """pyenv's CPython 3.12 plays the image's Python (no ipykernel): it is ``python3`` at once;
    its first start installs the wheelhouse, with no network, into the user's directory for
    this app and CPython 3.12 (not its user site), then runs."""
    bin_dir = pyenv_python("3.12")
    for name in ("home", "tmp"):
        (tmp_path / name).mkdir()
    port = free_port()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "TMPDIR": str(tmp_path / "tmp"), "JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1",
           **OFFLINE}
    started = launch(app6, ["--port", str(port), "--allow-root"], env, tmp_path / "log")
    client = Jupyter(port, "/")
    private = tmp_path / "home/.local/share/jupyter-6/image-kernel"
    try:
        client.wait_ready(alive=started.alive)
        specs = client.kernelspecs()["kernelspecs"]
        assert set(specs) == {"python3", "bundle-python3"}
        assert specs["python3"]["spec"]["display_name"].startswith("Python 3.12.")
        assert not private.exists(), "nothing is installed before the kernel's first start"
        out = client.run("import sys, ipykernel; print(sys.version_info[:2], "
                         "ipykernel.__file__)", deadline=300)
        assert out.startswith("(3, 12) ")
        installed = Path(out.split()[-1])
        assert installed.parent.parent.parent == private, installed
        assert installed.parent.parent.name.startswith("cp312-x86_64-")
        assert client.run("print(6*7)") == "42\n"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- log ---\n{started.output()[-4000:]}") from exc
    finally:
        stop(started.proc)
    assert "installed ipykernel for" in started.output()
    assert not (tmp_path / "home/.local/lib").exists(), "the image Python's user site"
    assert not list(private.glob("*/bin")), "no console scripts naming the bundle's Python"


def test_an_image_python_the_wheelhouse_cannot_serve_is_explained(app6: Path,
                                                                   tmp_path: Path) -> None:
    bin_dir = pyenv_python("3.9")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(app6 / "bin/launch"), "--allow-root", "--dry-run"], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["kernels"]) == {"python3"}, "python3: the bundle's"
    assert "(Python 3.9." in proc.stderr
    assert "the bundled wheelhouse is for CPython 3.10, 3.11, 3.12" in proc.stderr
    assert "-m pip install ipykernel" in proc.stderr


def test_root_needs_an_explicit_flag(app6: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs as root only")
    proc = subprocess.run([str(app6 / "bin/launch"), "--dry-run"],
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 78
    assert "refusing to run as root: pass --allow-root" in proc.stderr


@pytest.mark.parametrize(("name", "own", "other"), [
    ("jupyter-6", "jupyter_notebook_config.py", "ServerApp"),
    ("jupyterlab-4", "jupyter_server_config.py", "NotebookApp"),
])
def test_one_version_specific_configuration(name: str, own: str, other: str, app6: Path,
                                            lab_bundle: Path, tmp_path: Path) -> None:
    app = app6 if name == "jupyter-6" else extract(lab_bundle, tmp_path / "lab") / "app"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "NB_PREFIX": "/notebook/ns/nb", "PYTHONPATH": "/junk", "VIRTUAL_ENV": "/junk",
           "LD_LIBRARY_PATH": "/junk", "LD_PRELOAD": "/junk/libjunk.so"}
    proc = subprocess.run([str(app / "bin/launch"), "--allow-root", "--dry-run", "--port",
                           "9999", "--platform-auth"], env=env, capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    config_dir = Path(plan["env"]["JUPYTER_CONFIG_PATH"])
    assert sorted(p.name for p in config_dir.iterdir()) == [own]
    text = (config_dir / own).read_text()
    assert other not in text
    assert "base_url = '/notebook/ns/nb/'" in text and "port = 9999" in text
    assert ".token = ''" in text, "--platform-auth without JUPYTER_TOKEN: no token"
    for leak in ("PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "LD_PRELOAD"):
        assert leak not in plan["env"]
    assert plan["argv"][:2] == [str(app / "python/bin/python3.11"), "-I"]


@pytest.mark.parametrize("name", ["jupyter-6", "jupyterlab-4"])
def test_manifest_describes_the_launch_for_platforms(name: str, jupyter_bundle: Path,
                                                     lab_bundle: Path) -> None:
    bundle = jupyter_bundle if name == "jupyter-6" else lab_bundle
    sidecar = json.loads(bundle.with_name(bundle.name[:-len(".tar.zst")] + ".json").read_text())
    schema = json.loads(files("builder.bundle").joinpath("manifest.schema.json").read_text())
    jsonschema.validate(sidecar, schema)
    assert sidecar["labels"] == {"ai.backend.service-ports": f"{name}:http:8888"}
    assert sidecar["launch"]["flavor"] == ("notebook6" if name == "jupyter-6"
                                           else "jupyter-server")
    assert sidecar["launch"]["wheelhouse"].keys() == {"3.10", "3.11", "3.12"}
    assert sidecar["ui"]["kind"] == "webapp" and sidecar["ui"]["description"]
    assert sidecar["ui"]["accepted_env"] == ["JUPYTER_TOKEN", "NB_PREFIX"]
    service_def = read_member(bundle, "service-def.json")
    assert service_def is not None
    sd_schema = json.loads(files("builder.launch").joinpath("service-def.schema.json").read_text())
    jsonschema.validate(json.loads(service_def), sd_schema)
    with subprocess.Popen(["tar", "--zstd", "-tf", str(bundle)], stdout=subprocess.PIPE,
                          text=True) as tar:
        assert tar.stdout is not None
        first = [tar.stdout.readline().strip() for _ in range(2)]
        tar.stdout.read()
    assert first == ["manifest.json", "service-def.json"], "platforms read these first"
