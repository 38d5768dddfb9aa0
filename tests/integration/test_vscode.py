"""The VS Code bundle's acceptance (issue 5): code-server from its bundle in a root with neither
Node.js nor Python.

The root is the cached ``debootstrap --variant=minbase`` bookworm root, read-only, with a tmpfs
``/tmp``, the bundle's ``app/`` read-only at ``/opt/apps/vscode`` (``IsolatedRoot`` of
test_launch.py); everything runs there as uid 1000 with ``HOME`` in the tmpfs, which is also the
working directory and the folder opened. Checked:

- the service definition's command (``{ports[0]}`` filled, ``--ip 127.0.0.1`` added so
  nothing listens beyond loopback) serves ``/healthz`` (200, JSON) and ``/`` (200 after
  code-server's redirect to ``?folder=``), and Debian's headless Chromium, on the host, loads
  the workbench and sees the Explorer list a file of that folder (tests/browser.py), then opens
  an integrated terminal and types a command whose output file shows the shell runs as uid
  1000 with the image's ``LD_LIBRARY_PATH`` back;
- ``bin/code-server --install-extension`` of a ``.vsix`` made here (tests/vsix.py) installs into
  the user's extensions directory, ``--list-extensions`` shows it, the bundle stays untouched;
- the same bundle mounted at another path (``/srv/elsewhere/vscode``, no ``/opt/apps`` at all)
  does the same.

Times (first ``/healthz`` 200, workbench with the file listed, extension install) are written to
``.cache/vscode-test/last-run.json``; ``seconds_to_ok`` is the measuring function.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import browser
import pytest
from rootfs import can_isolate, ensure_rootfs
from test_build import extract
from test_launch import JUNK_ENV, IsolatedRoot, _uid, free_port, service_def_command, stop
from vsix import extension_id, make_vsix

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".cache" / "vscode-test" / "last-run.json"
NAME = "vscode"
HOME = "/tmp/home"  # the user's home, in the root's tmpfs: also the cwd and the folder opened
TEST_FILE = "hello-from-the-test.txt"
TERMINAL_FILE = "written-in-the-terminal.txt"
VSIX = {"publisher": "builder-test", "name": "hello", "version": "0.0.1"}
DEADLINE = 120.0  # seconds for code-server's first answer (about 0.3 s here when idle)


# --- helpers the lead can reuse (e.g. in bench/) ------------------------------------------------


def get(port: int, path: str, *, timeout: float = 10,
        follow: int = 5) -> tuple[int, dict[str, str], bytes, str]:
    """GET http://127.0.0.1:port/path, following up to ``follow`` redirects; returns the status,
    headers (names in lower case), body and the path finally answered."""
    target = path
    for _ in range(follow + 1):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        location = headers.get("location")
        if status not in (301, 302, 303, 307, 308) or not location:
            break
        joined = urllib.parse.urljoin(f"http://127.0.0.1:{port}{target}", location)
        parts = urllib.parse.urlsplit(joined)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    return status, headers, body, target


def seconds_to_ok(port: int, path: str = "/healthz", *, alive: Callable[[], bool],
                  deadline: float = DEADLINE, interval: float = 0.05) -> float:
    """Seconds from now until GET ``path`` answers 200 (bounded by ``deadline``; stops at once
    when ``alive()`` turns false). Call it right after starting the server."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if not alive():
            raise AssertionError("the server exited before answering")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(port, path, timeout=2, follow=0)[0] == 200:
                return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"no HTTP 200 from {path} within {deadline:.0f} s")


def record(**seconds: float) -> None:
    """Merge timings into RESULTS (for the lead's benchmark tables)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data.update({k: round(v, 2) for k, v in seconds.items()})
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- the root and what runs in it ------------------------------------------------------------


def inside(isolated: IsolatedRoot, path: str) -> Path:
    """The host's view of ``path`` in the isolated root (through its holder's mount namespace);
    only the tmpfs ``/tmp`` is writable there."""
    assert isolated.holder is not None
    return Path(f"/proc/{isolated.holder.pid}/root") / str(isolated.mount).lstrip("/") / \
        path.lstrip("/")


def give(isolated: IsolatedRoot, path: str, content: bytes | None = None) -> Path:
    """A directory (``content`` None) or a file at ``path`` in the root's /tmp, owned by uid
    1000, with the parents it needs (existing ones are left as they are)."""
    target = inside(isolated, path)
    parts = Path(path).relative_to("/tmp").parts
    for depth in range(1, len(parts) + (content is None)):
        directory = inside(isolated, str(Path("/tmp", *parts[:depth])))
        if not directory.is_dir():
            directory.mkdir()
            os.chown(directory, 1000, 1000)
    if content is not None:
        target.write_bytes(content)
        os.chown(target, 1000, 1000)
    return target


def run(isolated: IsolatedRoot, argv: list[str], env: dict[str, str], log: Path, *,
        timeout: float = 180, cwd: str | None = None) -> tuple[int, str]:
    """Run a command to its end in the root as uid 1000 (bounded); its exit code and output."""
    started = isolated.start(argv, env, log=log, cwd=cwd)
    try:
        code = started.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(started.proc)
        raise AssertionError(f"{argv} did not end within {timeout} s:\n"
                             f"{started.output()[-3000:]}") from None
    return code, started.output()


def user_env(home: str = HOME) -> dict[str, str]:
    """An image's environment with its leaks (Python, libraries, Node's own knobs) at junk."""
    return {**JUNK_ENV, "HOME": home, "LAUNCH_IP": "127.0.0.1",
            "NODE_OPTIONS": "--require /tmp/junk/node-options.js",
            "NODE_PATH": "/tmp/junk/node_modules"}


def prepare_user(isolated: IsolatedRoot) -> None:
    give(isolated, HOME)
    give(isolated, f"{HOME}/{TEST_FILE}", b"hello from the VS Code acceptance test\n")
    # what NODE_OPTIONS points at: a node that loads it fails at once
    give(isolated, "/tmp/junk/node-options.js", b'throw new Error("junk NODE_OPTIONS");\n')


def on_loopback(command: list[str]) -> list[str]:
    """The launcher's command bound to 127.0.0.1 (the service definition says 0.0.0.0, for the
    platform's proxy; the launcher's last --ip wins): nothing here listens beyond loopback."""
    split = command.index("--") if "--" in command else len(command)
    return [*command[:split], "--ip", "127.0.0.1", *command[split:]]


def moved(command: list[str], apps_dir: str) -> list[str]:
    """The service definition's command for the bundle mounted at ``apps_dir/vscode``."""
    final = f"/opt/apps/{NAME}"
    assert any(final in part for part in command), f"no {final} in {command}"
    return [part.replace(final, f"{apps_dir}/{NAME}") for part in command]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vscode_app(vscode_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle extracted (manifest.json, service-def.json, app/), readable by uid 1000."""
    reason = can_isolate()
    if reason:
        pytest.skip(reason)
    root = extract(vscode_bundle, tmp_path_factory.mktemp(NAME) / "bundle")
    subprocess.run(["chmod", "-R", "a+rX", str(root.parent)], check=True)
    return root


@pytest.fixture(scope="module")
def minbase() -> Path:
    root = ensure_rootfs("bookworm")
    for program in ("node", "nodejs", "python3", "python"):
        for directory in ("usr/bin", "usr/local/bin", "bin"):
            assert not (root / directory / program).exists(), f"the root has {program}"
    return root


@contextlib.contextmanager
def isolated_root(vscode_app: Path, minbase: Path, scratch: Path,
                  apps_dir: str = "/opt/apps") -> Iterator[IsolatedRoot]:
    with IsolatedRoot(root=minbase, apps={NAME: vscode_app}, scratch=scratch,
                      apps_dir=apps_dir) as isolated:
        prepare_user(isolated)
        yield isolated


def needs_browser() -> None:
    reason = browser.unavailable()
    if reason:
        pytest.skip(reason)


# --- the acceptance ---------------------------------------------------------------------------


def test_the_test_vsix_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = make_vsix(tmp_path / "a", **VSIX)
    second = make_vsix(tmp_path / "b", **VSIX)
    assert first.name == second.name == "builder-test.hello-0.0.1.vsix"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["extension.vsixmanifest", "[Content_Types].xml",
                                      "extension/package.json", "extension/extension.js"]
        manifest = json.loads(archive.read("extension/package.json"))
    assert manifest["engines"]["vscode"].startswith("^1.")


def serve_and_look(isolated: IsolatedRoot, command: Callable[[int], list[str]], tmp_path: Path,
                   *, with_browser: bool = True) -> dict[str, float]:
    """Start ``command(port)`` (on loopback) as uid 1000 in HOME; check /healthz, / and
    (``with_browser``) the workbench's Explorer. Returns the times measured."""
    port = free_port()
    started = isolated.start(on_loopback(command(port)), user_env(),
                             log=tmp_path / "code-server.log", cwd=HOME)
    try:
        healthz = seconds_to_ok(port, "/healthz", alive=started.alive)
        assert _uid(started.proc.pid) == 1000
        assert f"http://127.0.0.1:{port}/" in started.output(), "not on loopback"
        status, headers, body, _ = get(port, "/healthz")
        assert status == 200
        assert headers.get("content-type", "").startswith("application/json"), headers
        assert "status" in json.loads(body), body
        status, headers, body, answered = get(port, "/")
        assert status == 200, (status, answered, body[:500])
        assert headers.get("content-type", "").startswith("text/html"), headers
        assert answered.startswith("/?folder="), f"/ led to {answered}, not to a folder"
        assert urllib.parse.unquote(answered.partition("folder=")[2]) == HOME, answered
        times = {"healthz": healthz}
        if with_browser:
            # the integrated terminal (node-pty in the ptyHost): a shell as uid 1000 with the
            # image's environment (LD_LIBRARY_PATH given back by node-env.js)
            marker = f"{HOME}/{TERMINAL_FILE}"
            seen = browser.open_workbench(
                f"http://127.0.0.1:{port}/", expect=TEST_FILE, artifacts=tmp_path / "browser",
                terminal=f'echo "$(id -u) $LD_LIBRARY_PATH" > {marker}')
            assert seen.title.endswith("code-server"), seen.title
            times["workbench"] = seen.seconds
            written = inside(isolated, marker)
            for _ in range(100):  # bounded: 20 s for the shell to run the line
                if written.is_file() and written.read_text().endswith("\n"):
                    break
                time.sleep(0.2)
            assert written.is_file(), f"the terminal did not run the command ({seen.screenshot})"
            assert written.read_text() == f"1000 {JUNK_ENV['LD_LIBRARY_PATH']}\n"
        assert started.alive(), "code-server exited"
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- code-server's log ---\n{started.output()[-4000:]}"
                             ) from exc
    finally:
        stop(started.proc)
    return times


def install_and_list(isolated: IsolatedRoot, code_server: str, tmp_path: Path,
                     app: Path) -> float:
    """``code-server --install-extension`` of a fresh .vsix as uid 1000: listed, and in the
    user's extensions directory. Returns the install's seconds."""
    vsix = make_vsix(tmp_path / "vsix", **VSIX)
    give(isolated, "/tmp/x")
    give(isolated, "/tmp/x/test.vsix", vsix.read_bytes())
    env = user_env()
    start = time.monotonic()
    code, out = run(isolated, [code_server, "--install-extension", "/tmp/x/test.vsix"], env,
                    tmp_path / "install.log", cwd=HOME)
    seconds = time.monotonic() - start
    assert code == 0, out
    assert "was successfully installed" in out, out
    code, out = run(isolated, [code_server, "--list-extensions", "--show-versions"], env,
                    tmp_path / "list.log", cwd=HOME)
    assert code == 0, out
    wanted = f"{extension_id(VSIX['publisher'], VSIX['name'])}@{VSIX['version']}"
    assert wanted in out.lower().split(), out
    extensions = inside(isolated, f"{HOME}/.local/share/code-server/extensions")
    installed = extensions / f"{VSIX['publisher']}.{VSIX['name']}-{VSIX['version']}"
    assert (installed / "package.json").is_file(), sorted(p.name for p in extensions.iterdir())
    assert json.loads((installed / "package.json").read_text())["name"] == VSIX["name"]
    assert installed.stat().st_uid == 1000
    assert not list(app.rglob(f"{VSIX['publisher']}.{VSIX['name']}*")), "written to the bundle"
    return seconds


def test_service_def_serves_the_workbench_with_the_working_directory(
        vscode_app: Path, minbase: Path, tmp_path: Path) -> None:
    """(a) the service definition's command, {ports[0]} filled, as uid 1000; Chromium sees
    the working directory's file in the Explorer."""
    needs_browser()
    with isolated_root(vscode_app, minbase, tmp_path / "mnt") as isolated:
        times = serve_and_look(isolated, lambda port: service_def_command(vscode_app, port),
                               tmp_path)
    record(healthz_seconds=times["healthz"], workbench_seconds=times["workbench"])


def test_install_extension_goes_to_the_users_directory(vscode_app: Path, minbase: Path,
                                                      tmp_path: Path) -> None:
    """(b) bin/code-server --install-extension of a .vsix, as uid 1000, from a read-only
    bundle."""
    with isolated_root(vscode_app, minbase, tmp_path / "mnt") as isolated:
        seconds = install_and_list(isolated, f"/opt/apps/{NAME}/bin/code-server", tmp_path,
                                   vscode_app)
        code, out = run(isolated, ["/bin/sh", "-c", f"touch /opt/apps/{NAME}/probe"],
                        user_env(), tmp_path / "touch.log")
        assert code != 0 and "Read-only file system" in out, out
    record(install_extension_seconds=seconds)


def test_the_bundle_works_mounted_at_another_path(vscode_app: Path, minbase: Path,
                                                  tmp_path: Path) -> None:
    """(c) the same bundle at /srv/elsewhere/vscode (nothing at /opt/apps): the service
    definition's command moved there serves, and extensions install (Chromium too, if here)."""
    apps_dir = "/srv/elsewhere"
    with isolated_root(vscode_app, minbase, tmp_path / "mnt", apps_dir=apps_dir) as isolated:
        assert not inside(isolated, f"/opt/apps/{NAME}").exists()
        times = serve_and_look(
            isolated, lambda port: moved(service_def_command(vscode_app, port), apps_dir),
            tmp_path, with_browser=browser.unavailable() is None)
        install_and_list(isolated, f"{apps_dir}/{NAME}/bin/code-server", tmp_path, vscode_app)
    record(moved_healthz_seconds=times["healthz"])
