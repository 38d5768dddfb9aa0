"""Debian's headless Chromium looking at a code-server page, for the VS Code acceptance test.

``open_workbench(url, expect="hello.txt", artifacts=dir)`` starts ``/usr/bin/chromedriver``
(which starts ``/usr/bin/chromium``, headless, a fresh profile, no background traffic), opens
``url``, and waits (bounded) until the VS Code workbench is up and its Explorer lists a row
named ``expect``. It returns what it saw (a ``Workbench``) and always leaves a screenshot in
``artifacts``; when the file never shows it raises ``WorkbenchNotReady`` whose message has the
page title, the rows seen, the screenshot's path, the console and the page's text.

Selenium only speaks WebDriver to the given chromedriver: with a driver path set it never runs
selenium-manager, so nothing is downloaded. chromedriver and Chromium run in their own process
group, which is killed when we are done, whatever happened.

What is read off the page (VS Code 1.139, seen on a running code-server 4.139.1): the workbench
is ``.monaco-workbench``; each Explorer entry is a ``.explorer-folders-view .monaco-list-row``
(``role=treeitem``) whose ``aria-label`` is the file's name (``.label-name`` holds the same).
With ``terminal=COMMAND`` it then opens a new integrated terminal the way a user does (F1,
"Terminal: Create New Terminal", Enter, "Trust Folder & Continue" in Workspace Trust's dialog),
clicks into it and types ``COMMAND`` and Enter: the caller checks what the command did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# headless as root, and quiet: without the background-networking flags Chromium keeps trying
# Google's hosts through a network that is closed here
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
         "--window-size=1280,800")
POLL = 0.5  # seconds between looks at the page

# one look at the page: everything the wait and a failure report need, in one round trip
_LOOK = """
const rows = [...document.querySelectorAll('.explorer-folders-view .monaco-list-row')];
const toasts = [...document.querySelectorAll(
    '.notifications-toasts .notification-list-item-message, .monaco-dialog-box .dialog-message')];
return {
  workbench: document.querySelector('.monaco-workbench') !== null,
  title: document.title,
  url: location.href,
  rows: rows.map(r => r.getAttribute('aria-label')
                      || (r.querySelector('.label-name') || r).textContent.trim()),
  notifications: toasts.map(t => t.textContent.trim()),
  text: document.body ? document.body.innerText.slice(0, 2000) : '',
};
"""


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.is_file():
            return f"{path} is missing (Debian: apt-get install -y {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Workbench:
    """What Chromium saw once the Explorer listed the expected file."""

    url: str  # after code-server's redirects (e.g. ``/?folder=...``)
    title: str  # e.g. "Welcome - folder - code-server"
    explorer: tuple[str, ...]  # the Explorer's row labels, top to bottom
    notifications: tuple[str, ...]  # toasts and dialogs showing at that moment
    console: tuple[str, ...]  # the browser console, "LEVEL message"
    seconds: float  # from asking for the URL until the file was listed
    screenshot: Path
    terminal_seconds: float | None = None  # from F1 until the command was typed into a shell


class WorkbenchNotReady(AssertionError):
    """The workbench or the expected Explorer entry did not show in time."""


@contextmanager
def chromium(artifacts: Path) -> Iterator[Any]:
    """A selenium driver for headless Chromium; chromedriver, Chromium and the profile are
    gone afterwards (their process group is killed)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    artifacts.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # HOME in the profile too: Chromium's crash handler (which detaches into its own session
    # and ends with the browser) keeps its database under $HOME/.config/chromium
    service = Service(executable_path=str(CHROMEDRIVER),
                      log_output=str(artifacts / "chromedriver.log"),
                      env={**os.environ, "HOME": str(profile)},
                      popen_kw={"start_new_session": True})
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        yield driver
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        process = getattr(service, "process", None)
        if process is not None:  # the group chromedriver leads, Chromium's processes in it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _console(driver: Any) -> tuple[str, ...]:
    from selenium.common.exceptions import WebDriverException

    try:
        entries = driver.get_log("browser")
    except WebDriverException as exc:  # a report must not fail on its own
        return (f"(no console: {exc})",)
    return tuple(f"{e.get('level')} {e.get('message')}" for e in entries)


def _type_in_new_terminal(driver: Any, command: str, *, deadline: float) -> float:
    """F1 > "Terminal: Create New Terminal", then ``command`` and Enter in its input."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    start = time.monotonic()
    keys = ActionChains(driver)  # to whatever has the focus, as a user's keyboard does
    keys.send_keys(Keys.F1).perform()
    while True:
        try:
            box = driver.find_element(By.CSS_SELECTOR, ".quick-input-widget input")
            box.send_keys("Terminal: Create New Terminal")
            break
        except WebDriverException:
            if time.monotonic() - start > deadline:
                raise WorkbenchNotReady("the command palette did not open (F1)") from None
            time.sleep(POLL)
    time.sleep(1)  # the palette filters as it is typed into
    box.send_keys(Keys.ENTER)
    while True:
        # Workspace Trust asks before a terminal runs in a folder: a user trusts their own home
        for button in driver.find_elements(By.CSS_SELECTOR, ".monaco-dialog-box .monaco-button"):
            if button.text.startswith("Trust Folder"):
                with contextlib.suppress(WebDriverException):
                    button.click()
        found = driver.find_elements(By.CSS_SELECTOR, ".terminal-wrapper .xterm-screen")
        modal = driver.find_elements(By.CSS_SELECTOR, ".monaco-dialog-modal-block")
        if found and not modal:
            time.sleep(2)  # the shell's prompt: keys typed before it are still read, but late
            try:
                found[-1].click()
            except WebDriverException:  # a dialog came up meanwhile: answer it first
                continue
            ActionChains(driver).send_keys(command + Keys.ENTER).perform()
            return time.monotonic() - start
        if time.monotonic() - start > deadline:
            raise WorkbenchNotReady(f"no terminal opened within {deadline:.0f} s")
        time.sleep(POLL)


def open_workbench(url: str, *, expect: str, artifacts: Path, deadline: float = 90,
                   terminal: str | None = None) -> Workbench:
    """Open ``url`` and wait until the Explorer lists ``expect``; see the module's doc."""
    from selenium.common.exceptions import WebDriverException

    start = time.monotonic()
    with chromium(artifacts) as driver:
        driver.set_page_load_timeout(deadline)
        driver.set_script_timeout(10)
        screenshot = artifacts / "workbench.png"
        look: dict[str, Any] = {}
        errors: list[str] = []
        try:
            driver.get(url)
        except WebDriverException as exc:  # reported below, with what the page shows
            errors.append(f"loading {url}: {type(exc).__name__}: {exc}".strip())
        while True:
            try:
                look = driver.execute_script(_LOOK) or {}
            except WebDriverException as exc:  # e.g. while the page navigates
                errors.append(f"{type(exc).__name__}: {str(exc).strip()[:300]}")
            if look.get("workbench") and expect in look.get("rows", ()):
                seconds = time.monotonic() - start
                typed = None
                if terminal is not None:
                    try:
                        typed = _type_in_new_terminal(driver, terminal, deadline=deadline)
                    finally:
                        driver.save_screenshot(str(artifacts / "terminal.png"))
                driver.save_screenshot(str(screenshot))
                return Workbench(url=look["url"], title=look["title"],
                                 explorer=tuple(look["rows"]),
                                 notifications=tuple(look["notifications"]),
                                 console=_console(driver), seconds=seconds,
                                 screenshot=screenshot, terminal_seconds=typed)
            if time.monotonic() - start > deadline:
                break
            time.sleep(POLL)
        shot = "(none)"
        with contextlib.suppress(WebDriverException):
            if driver.save_screenshot(str(screenshot)):
                shot = str(screenshot)
        console = "\n".join(f"  {line[:400]}" for line in _console(driver)[-30:])
        raise WorkbenchNotReady(
            f"no Explorer entry {expect!r} at {url} within {deadline:.0f} s\n"
            f"workbench up: {bool(look.get('workbench'))}; title: {look.get('title')!r}; "
            f"url now: {look.get('url')!r}\n"
            f"explorer rows: {look.get('rows')}\n"
            f"notifications: {look.get('notifications')}\n"
            f"screenshot: {shot}\n"
            f"driver errors (last 5): {errors[-5:]}\n"
            f"console (last 30):\n{console}\n"
            f"page text:\n{look.get('text', '')[:1500]}")
