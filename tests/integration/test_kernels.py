"""Kernels in data-science images (issue 11): the image's Python is the notebook's Python.

Two cached minbase bookworm roots play data-science images: Debian's python3 with numpy and
pip (no ipykernel; PEP 668 applies) and the same with Debian's ipykernel. Each is read-only
(``IsolatedRoot`` of test_launch.py) with jupyter-6 read-only at ``/opt/apps/jupyter-6``;
everything runs there as uid 1000 with ``HOME`` a directory of its own in the root's tmpfs.
Users are played by the kernel WebSocket, the terminal WebSocket and Debian's headless
Chromium. After every action, the image's numpy is still Debian's (same version, same file)
and the image Python's user site (``~/.local/lib``) does not exist.

Times (first start of the image's kernel, with its install; a later start) go to
``.cache/kernels-test/last-run.json``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import pytest
from factories import pure_wheel
from rootfs import IMAGE_WITH_IPYKERNEL, IMAGE_WITH_NUMPY, can_isolate, ensure_rootfs
from test_build import extract
from test_launch import (
    TOKEN,
    IsolatedRoot,
    Jupyter,
    Started,
    WebSocket,
    free_port,
    service_def_command,
    stop,
)
from test_vscode import give, inside, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".cache" / "kernels-test" / "last-run.json"
NAME = "jupyter-6"
APP = f"/opt/apps/{NAME}"
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
FIX = f"{APP}/bin/launch install-kernel /usr/bin/python3"
_LOGS = itertools.count()
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def record(**seconds: float) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data.update({k: round(v, 2) for k, v in seconds.items()})
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def image_env(home: str) -> dict[str, str]:
    """What an image's container gives its processes."""
    return {"PATH": IMAGE_PATH, "HOME": home, "LANG": "C.UTF-8", "SHELL": "/bin/bash",
            "JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


# --- the root, the user, the server ----------------------------------------------------------


@pytest.fixture(scope="module")
def app6(jupyter_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = can_isolate()
    if reason:
        pytest.skip(reason)
    root = extract(jupyter_bundle, tmp_path_factory.mktemp(NAME) / "bundle")
    subprocess.run(["chmod", "-R", "a+rX", str(root.parent)], check=True)
    return root


@contextlib.contextmanager
def image_root(app6: Path, include: tuple[str, ...], scratch: Path) -> Iterator[Image]:
    root = ensure_rootfs("bookworm", include=include)
    with IsolatedRoot(root=root, apps={NAME: app6}, scratch=scratch) as isolated:
        yield Image(isolated=isolated, scratch=scratch)


@pytest.fixture(scope="module")
def numpy_image(app6: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """Debian's python3 + numpy + pip, no ipykernel: one root for this module's tests."""
    with image_root(app6, IMAGE_WITH_NUMPY, tmp_path_factory.mktemp("numpy-root")) as image:
        image.numpy = image.image_numpy("/tmp")
        assert image.numpy[1] == f"{DIST_PACKAGES}/numpy/__init__.py", image.numpy
        yield image


class Image:
    """An isolated root with jupyter-6, and what a user does in it."""

    def __init__(self, *, isolated: IsolatedRoot, scratch: Path) -> None:
        self.isolated, self.scratch = isolated, scratch
        self.numpy: tuple[str, str] = ("", "")

    def log(self, name: str) -> Path:
        return self.scratch / f"{next(_LOGS):03d}-{name}.log"

    def home(self, name: str) -> str:
        home = f"/tmp/{name}"
        give(self.isolated, home)
        return home

    def run(self, argv: list[str], home: str) -> tuple[int, str]:
        return run(self.isolated, argv, image_env(home), self.log(Path(argv[0]).name))

    def image_numpy(self, home: str) -> tuple[str, str]:
        code, out = self.run(["/usr/bin/python3", "-c", "import numpy; "
                              "print(numpy.__version__, numpy.__file__)"], home)
        assert code == 0, out
        version, where = out.split()
        return version, where

    def untouched(self, home: str) -> None:
        """The image's numpy is Debian's, as before; the image Python's user site is absent."""
        assert self.image_numpy(home) == self.numpy, "the image's numpy changed"
        assert not inside(self.isolated, f"{home}/.local/lib").exists(), \
            "something was written into the image Python's user site"

    def serve(self, home: str, port: int | None = None) -> tuple[Started, Jupyter]:
        port = port or free_port()
        started = self.isolated.start(service_def_command(self.app, port), image_env(home),
                                      log=self.log("jupyter"), cwd=home)
        client = Jupyter(port, "/")
        client.wait_ready(alive=started.alive)
        return started, client

    @property
    def app(self) -> Path:
        return self.isolated.apps[NAME]


@contextlib.contextmanager
def explained(*started: Started) -> Iterator[None]:
    """A failed assertion carries the server logs."""
    try:
        yield
    except AssertionError as exc:
        logs = "\n".join(f"--- log ---\n{s.output()[-5000:]}" for s in started)
        raise AssertionError(f"{exc}\n{logs}") from exc


def failure_text(client: Jupyter, kernel_id: str, code: str) -> str:
    try:
        out = client.execute(kernel_id, code, deadline=300)
    except AssertionError as exc:
        return str(exc)
    raise AssertionError(f"the cell ran: {out!r}")


# --- 1 and 2: python3 is the image's Python; ipykernel installed by its first start ---------

PROBE = """
import json, os, subprocess, sys, numpy, ipykernel
print(json.dumps({"executable": sys.executable, "numpy": numpy.__version__,
                  "ipykernel": ipykernel.__file__, "path": sys.path,
                  "pythonpath": os.environ.get("PYTHONPATH"),
                  "child": subprocess.run([sys.executable, "-c", "import ipykernel"],
                                          capture_output=True).returncode}))
"""


def test_python3_is_the_images_python_with_ipykernel_installed_by_its_first_start(
        numpy_image: Image) -> None:
    home = numpy_image.home("home-first")
    private = f"{home}/.local/share/{NAME}/image-kernel"
    started, client = numpy_image.serve(home)
    with explained(started):
        specs = client.kernelspecs()["kernelspecs"]
        assert set(specs) == {"python3", "bundle-python3"}
        assert specs["python3"]["spec"]["display_name"] == \
            "Python 3.11.2 (image: /usr/bin/python3)"
        assert specs["bundle-python3"]["spec"]["display_name"] == "Python 3.11.7 (jupyter-6 bundle)"
        assert not inside(numpy_image.isolated, private).exists(), "installed before a start"
        numpy_image.untouched(home)

        # two starts at once: the second waits for the first's install
        start = time.monotonic()
        kernels = [client.start_kernel("python3") for _ in range(2)]
        seen = [json.loads(client.execute(k, PROBE, deadline=300)) for k in kernels]
        first = time.monotonic() - start
        for kernel in kernels:
            client.shutdown(kernel)
        numpy_image.untouched(home)
        for probe in seen:
            assert probe["executable"] == "/usr/bin/python3"
            assert probe["numpy"] == numpy_image.numpy[0]
            directory = str(Path(probe["ipykernel"]).parent.parent)
            assert Path(directory).parent == Path(private), probe["ipykernel"]
            assert Path(directory).name.startswith("cp311-x86_64-")
            # after site-packages (the image's own packages win), seen by the kernel only
            assert probe["path"].index(directory) > probe["path"].index(DIST_PACKAGES)
            assert probe["pythonpath"] is None and probe["child"] != 0
        log = started.output()
        assert log.count("installing ipykernel for /usr/bin/python3") == 1, log
        assert log.count("waiting for another kernel's install") == 1, log

        start = time.monotonic()
        assert client.run("print(6*7)") == "42\n"
        again = time.monotonic() - start
        out = client.run("import sys; print(sys.executable)", kernel="bundle-python3")
        assert out == f"{APP}/python/bin/python3.11\n"
        numpy_image.untouched(home)
    stop(started.proc)
    record(image_kernel_first_start_seconds=first, image_kernel_later_start_seconds=again)


def test_a_failed_first_start_says_in_the_notebook_how_to_fix_it(numpy_image: Image) -> None:
    home = numpy_image.home("home-failed")
    blocked = give(numpy_image.isolated, f"{home}/.local/share/{NAME}/image-kernel")
    os.chown(blocked, 0, 0)  # a directory the user cannot write
    started, client = numpy_image.serve(home)
    with explained(started):
        kernel = client.start_kernel("python3")
        text = failure_text(client, kernel, "print('ran')")
        client.shutdown(kernel)
        assert "has no ipykernel and installing it from the bundle failed" in text, text
        assert "Permission denied" in text and f"run in a terminal: {FIX}" in text, text
        assert FIX in started.output(), "and in the server's log"
        numpy_image.untouched(home)

        os.chown(blocked, 1000, 1000)  # the user fixes the cause, then runs the command shown
        code, out = numpy_image.run(FIX.split(), home)
        assert code == 0, out
        assert "installed ipykernel for /usr/bin/python3" in out
        out = client.run("import numpy, sys; print(sys.executable, numpy.__version__)")
        assert out.split() == ["/usr/bin/python3", numpy_image.numpy[0]]
        numpy_image.untouched(home)
    stop(started.proc)


def test_an_image_with_ipykernel_runs_its_own(app6: Path, tmp_path: Path) -> None:
    with image_root(app6, IMAGE_WITH_IPYKERNEL, tmp_path) as image:
        home = image.home("home")
        image.numpy = image.image_numpy(home)
        started, client = image.serve(home)
        with explained(started):
            assert set(client.kernelspecs()["kernelspecs"]) == {"python3", "bundle-python3"}
            out = client.run("import ipykernel, numpy, sys; print(sys.executable, "
                             "ipykernel.__file__, numpy.__version__)")
            assert out.split() == ["/usr/bin/python3", f"{DIST_PACKAGES}/ipykernel/__init__.py",
                                   image.numpy[0]]
            assert not inside(image.isolated, f"{home}/.local/share/{NAME}/image-kernel"
                              ).exists(), "nothing installed for a Python with ipykernel"
            image.untouched(home)


# --- 3: %pip --------------------------------------------------------------------------------


def test_pip_in_the_bundle_kernel_installs_for_the_bundle_only(numpy_image: Image) -> None:
    home = numpy_image.home("home-pip")
    wheels = numpy_image.scratch / "wheels"
    demo = pure_wheel(wheels, "demo_pkg", "1.0", "WHAT = 'demo'\n")
    # the accident: a numpy installed from the bundle's kernel replaced the image's
    fake = pure_wheel(wheels, "numpy", "99.0", "__version__ = '99.0'\n")
    give(numpy_image.isolated, "/tmp/wheels")
    for wheel in (demo, fake):
        give(numpy_image.isolated, f"/tmp/wheels/{wheel.name}", wheel.read_bytes())
    site = f"{home}/.local/share/{NAME}/user/lib/python3.11/site-packages"
    started, client = numpy_image.serve(home)
    with explained(started):
        for line in (f"%pip install --no-index /tmp/wheels/{demo.name}",
                     f"%pip install --user --no-index /tmp/wheels/{fake.name}"):
            out = client.run(line, kernel="bundle-python3", deadline=180)
            assert "Successfully installed" in out, out
            numpy_image.untouched(home)
        check = ("import demo_pkg, numpy; print(demo_pkg.__file__, numpy.__file__, "
                 "numpy.__version__)")
        assert client.run(check, kernel="bundle-python3").split() == [
            f"{site}/demo_pkg.py", f"{site}/numpy.py", "99.0"], "read after a kernel restart"
        # the image's kernel: the image's pip and its rules (PEP 668), its own numpy
        for line in (f"%pip install --no-index /tmp/wheels/{demo.name}",
                     f"%pip install --user --no-index /tmp/wheels/{fake.name}"):
            out = ANSI.sub("", client.run(line, deadline=300))
            assert "error: externally-managed-environment" in out, out
            numpy_image.untouched(home)
        out = client.run("import numpy; print(numpy.__version__)")
        assert out == f"{numpy_image.numpy[0]}\n"
    stop(started.proc)
    started, client = numpy_image.serve(home)  # a server restart
    with explained(started):
        assert client.run(check, kernel="bundle-python3").split()[-1] == "99.0"
        numpy_image.untouched(home)
    stop(started.proc)


# --- 4: terminals -----------------------------------------------------------------------------


def terminal(client: Jupyter, line: str, done: Path, deadline: float = 60) -> None:
    """Open a terminal, type ``line`` and Enter, keep it open until ``done`` exists."""
    status, _h, body = client.request("POST", "api/terminals")
    assert status == 200, (status, body)
    name = json.loads(body)["name"]
    try:
        with WebSocket(client.port, f"/terminals/websocket/{name}", client.token) as ws:
            ws.send_text(json.dumps(["stdin", line + "\r"]))
            end = time.monotonic() + deadline
            while not done.is_file() and time.monotonic() < end:
                with contextlib.suppress(OSError):  # nothing printed for a while
                    ws.recv_text(0.5)
    finally:
        client.request("DELETE", f"api/terminals/{name}")


def test_terminals_have_the_images_environment_and_the_bundles_tools_last(
        numpy_image: Image) -> None:
    home = numpy_image.home("home-terminal")
    started, client = numpy_image.serve(home)
    marker = f"{home}/terminal.txt"
    with explained(started):
        written = inside(numpy_image.isolated, marker)
        terminal(client, 'printf "%s\\n" "$PATH" "$(command -v python3)" '
                 '"$(command -v jupyter)" "$(id -u)" "$(jupyter notebook --version)" '
                 f'"$(python3 -c "import numpy; print(numpy.__version__)")" > {marker}.tmp && '
                 f"mv {marker}.tmp {marker}", written)
        assert written.is_file(), "the terminal did not run the command"
        assert written.read_text().splitlines() == [
            f"{IMAGE_PATH}:{home}/.local/bin:{APP}/bin", "/usr/bin/python3", f"{APP}/bin/jupyter",
            "1000", "6.5.7", numpy_image.numpy[0]]
        numpy_image.untouched(home)
    stop(started.proc)


# --- 5 and 1 in a browser: login survives a restart, no banner, python3 runs on the image -----

NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [],
               "execution_count": None,
               "source": "import sys, numpy\nprint(sys.executable, numpy.__version__)"}],
}
LOOK = """
const icon = document.querySelector('#kernel_indicator_icon');
const outputs = [...document.querySelectorAll('.output_area')].map(o => o.innerText);
return {idle: !!icon && icon.classList.contains('kernel_idle_icon'),
        kernel: (document.querySelector('.kernel_indicator_name') || {}).innerText || '',
        outputs: outputs, url: location.href};
"""


def wait_for(driver: Any, test: Any, what: str, deadline: float = 300) -> dict[str, Any]:
    end = time.monotonic() + deadline
    look: dict[str, Any] = {}
    while time.monotonic() < end:
        look = driver.execute_script(LOOK) or {}
        if test(look):
            return look
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {deadline} s; saw {look}")


def test_browser_login_survives_a_restart_and_a_notebook_runs_on_the_images_python(
        numpy_image: Image) -> None:
    reason = browser.unavailable()
    if reason:
        pytest.skip(reason)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    home = numpy_image.home("home-browser")
    give(numpy_image.isolated, f"{home}/image.ipynb", json.dumps(NOTEBOOK).encode())
    port = free_port()
    started, _client = numpy_image.serve(home, port)
    url = f"http://127.0.0.1:{port}"
    servers = [started]
    with explained(*servers), browser.chromium(numpy_image.scratch / "browser") as driver:
        driver.set_page_load_timeout(60)
        driver.get(f"{url}/tree")
        assert "/login" in driver.current_url, driver.current_url
        box = driver.find_element(By.ID, "password_input")
        box.send_keys(TOKEN + Keys.ENTER)
        end = time.monotonic() + 30
        while not driver.current_url.endswith("/tree") and time.monotonic() < end:
            time.sleep(0.2)
        assert driver.current_url == f"{url}/tree", driver.current_url
        assert "migrate_to_notebook7" not in driver.page_source, "the Notebook 7 banner shows"

        start = time.monotonic()
        driver.get(f"{url}/notebooks/image.ipynb")
        look = wait_for(driver, lambda seen: seen.get("idle"), "the kernel is idle")
        ready = time.monotonic() - start
        assert look["kernel"] == "Python 3.11.2 (image: /usr/bin/python3)", look
        driver.find_element(By.CSS_SELECTOR, ".cell .CodeMirror").click()
        driver.switch_to.active_element.send_keys(Keys.SHIFT + Keys.ENTER)
        look = wait_for(driver, lambda seen: any("python3" in o for o in seen.get("outputs", ())),
                        "the cell's output")
        assert look["outputs"][0].split() == ["/usr/bin/python3", numpy_image.numpy[0]], look
        numpy_image.untouched(home)

        stop(started.proc)  # a server restart: the same browser stays logged in
        started, _client = numpy_image.serve(home, port)
        servers.append(started)
        driver.get(f"{url}/tree")
        assert driver.current_url == f"{url}/tree", "sent to the login page again"
        secret = inside(numpy_image.isolated,
                        f"{home}/.local/share/jupyter/{NAME}_cookie_secret")
        assert secret.stat().st_mode & 0o777 == 0o600 and secret.stat().st_uid == 1000
        numpy_image.untouched(home)
    stop(started.proc)
    record(browser_image_kernel_idle_seconds=ready)
