"""The flagship, as a user meets it: classic Notebook 6 with its nbextensions, out of the box.

recipes/jupyter-6.toml built by the CLI (the contrib nbextensions' sdist built offline, the
build step that copies them, the checks) and launched from its service definition, read-only,
as uid 1000, in a minbase root with no Python. Headless Chromium then does what a user does:
the Nbextensions tab lists the contrib extensions; enabling "Table of Contents (2)" there is
stored in the user's home (the bundle stays read-only); a notebook with headings shows its table
of contents; an ipywidgets slider renders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, unavailable
from rootfs import ensure_rootfs
from test_build import extract
from test_launch import JUNK_ENV, TOKEN, IsolatedRoot, Jupyter, free_port, service_def_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOME = "/tmp/home"  # on the root's tmpfs /tmp, made by the user's own first command
NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Introduction"},
        {"cell_type": "markdown", "metadata": {}, "source": "## Part A: widgets"},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
         "source": "import ipywidgets as w\nw.IntSlider(value=7, description='seven')"},
        {"cell_type": "markdown", "metadata": {}, "source": "## Part B"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def served(jupyter_bundle: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[IsolatedRoot, Jupyter]]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    import subprocess

    bundle = extract(jupyter_bundle, tmp_path_factory.mktemp("nbext") / "bundle")
    subprocess.run(["chmod", "-R", "a+rX", str(bundle.parent)], check=True)
    root = ensure_rootfs("bookworm")
    logs = tmp_path_factory.mktemp("nbext-logs")
    with IsolatedRoot(root=root, apps={"jupyter-6": bundle},
                      scratch=tmp_path_factory.mktemp("nbext-mnt")) as isolated:
        made = isolated.start(["/bin/mkdir", "-p", HOME], {}, log=logs / "mkdir.log")
        made.proc.wait(timeout=30)
        port = free_port()
        env = {**JUNK_ENV, "JUPYTER_TOKEN": TOKEN, "LAUNCH_IP": "127.0.0.1", "HOME": HOME}
        server = isolated.start(service_def_command(bundle, port), env,
                                log=logs / "server.log", cwd=HOME)
        client = Jupyter(port, "/")
        try:
            client.wait_ready(alive=server.alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{server.output()[-4000:]}") from exc
        yield isolated, client


def test_the_contrib_nbextensions_are_served(served: tuple[IsolatedRoot, Jupyter]) -> None:
    _root, client = served
    for path in ("/nbextensions/", "/nbextensions/toc2/main.js",
                 "/nbextensions/collapsible_headings/main.js",
                 "/nbextensions/jupyter-js-widgets/extension.js",
                 "/nbextensions/nbextensions_configurator/tree_tab/main.js"):
        status, _headers, _body = client.request("GET", path)
        assert status == 200, path


def _wait(driver: Any, script: str, *, what: str, deadline: float = 60) -> Any:
    """Poll ``script`` (returns a truthy value when done) with a bound."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {deadline} s; page text:\n"
                         + str(driver.execute_script(
                             "return document.body ? document.body.innerText.slice(0, 3000)"
                             " : ''")))


def _read_in_root(root: IsolatedRoot, path: str, log: Path) -> str:
    started = root.start(["/bin/cat", path], {}, log=log)
    started.proc.wait(timeout=30)
    return started.output()


def test_a_user_enables_toc2_and_sees_headings_and_a_slider(
        served: tuple[IsolatedRoot, Jupyter], tmp_path: Path) -> None:
    root, client = served
    status, _h, body = client.request("PUT", "api/contents/headings.ipynb",
                                      {"type": "notebook", "content": NOTEBOOK})
    assert status in (200, 201), body
    base = f"http://127.0.0.1:{client.port}"
    with chromium(tmp_path / "artifacts") as driver:
        driver.get(f"{base}/tree?token={TOKEN}#nbextensions_configurator")
        # the tab lists the contrib extensions
        _wait(driver, "return [...document.querySelectorAll('.nbext-selector a')]"
                      ".some(a => a.textContent.trim() === 'Table of Contents (2)')",
              what="the Nbextensions tab listing Table of Contents (2)")
        # toc2 says "Compatibility: 4.x, 5.x": the tab greys it out until the user lifts that
        hide = driver.find_elements("css selector", "#nbext_hide_incompat")
        if hide and hide[0].is_selected():
            hide[0].click()
        toggle = driver.execute_script(
            "return [...document.querySelectorAll('.nbext-selector a')]"
            ".find(a => a.textContent.trim() === 'Table of Contents (2)')"
            ".querySelector('.nbext-enable-toggle')")
        toggle.click()
        _wait(driver, "return [...document.querySelectorAll('.nbext-selector a')]"
                      ".find(a => a.textContent.trim() === 'Table of Contents (2)')"
                      ".querySelector('.nbext-enable-toggle').classList"
                      ".contains('nbext-enabled')", what="toc2 shown as enabled")
        stored = _wait_for_choice(root, tmp_path)
        assert stored["load_extensions"]["toc2/main"] is True

        driver.get(f"{base}/notebooks/headings.ipynb?token={TOKEN}")
        _wait(driver, "return window.Jupyter && Jupyter.notebook && "
                      "Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()",
              what="the notebook and its kernel", deadline=90)
        driver.find_element("css selector", "#toc_button").click()  # the user opens the ToC
        # (the sidebar is position: fixed, so it has no offsetParent: ask its computed style)
        toc = _wait(driver, "var t = document.querySelector('#toc-wrapper');"
                            "return t && getComputedStyle(t).display !== 'none' && t.innerText",
                    what="the table of contents")
        assert "Introduction" in toc and "Part A: widgets" in toc and "Part B" in toc
        # and a user sees them: each entry's link has a box inside the window, on top
        seen = _wait(driver, """
            var links = [...document.querySelectorAll('#toc-wrapper .toc-item a')];
            var shown = links.filter(a => { var r = a.getBoundingClientRect();
                if (!r.width || !r.height || r.bottom > innerHeight || r.right > innerWidth)
                    return false;
                var hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                return hit !== null && (a === hit || a.contains(hit)); });
            return shown.length >= 3 && shown.map(a => a.innerText.trim());""",
                     what="the ToC's entries on screen")
        driver.save_screenshot(str(tmp_path / "artifacts" / "toc.png"))
        assert any("Part A: widgets" in text for text in seen), seen
        driver.execute_script("Jupyter.notebook.execute_all_cells()")  # Cell > Run All
        slider = _wait(driver, "var s = document.querySelector('.output_area .widget-slider');"
                               "return s && s.innerText", what="the ipywidgets slider",
                       deadline=90)
        assert "seven" in slider and "7" in slider
        driver.save_screenshot(str(tmp_path / "artifacts" / "notebook.png"))


def _wait_for_choice(root: IsolatedRoot, tmp_path: Path) -> dict[str, Any]:
    """The user's nbconfig in their home (written by the tab through the config API)."""
    path = f"{HOME}/.jupyter/nbconfig/notebook.json"
    end = time.monotonic() + 30
    text = ""
    for attempt in range(60):
        text = _read_in_root(root, path, tmp_path / f"cat-{attempt}.log")
        if '"toc2/main"' in text or time.monotonic() > end:
            break
        time.sleep(0.5)
    try:
        return dict(json.loads(text))
    except ValueError as exc:
        raise AssertionError(f"no user nbconfig at {path}: {text!r}") from exc
