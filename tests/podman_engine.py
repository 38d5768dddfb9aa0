"""Debian's podman as the tests drive it: a private store, a minbase image, the README's commands.

`Podman` keeps its images and containers in a store of its own (``--root``/``--runroot`` under a
test's temporary directory), so test runs never touch ``/var/lib/containers`` or each other, and
the store is removed afterwards. `minbase_image` imports a cached debootstrap minbase root (no
Python, no Node.js) as an image: Docker Hub is not reachable here, and a root without an
interpreter is the point (the bundle brings its own).

`readme_docker_runs` reads the ``docker run`` commands of README.md's ``sh`` blocks word for
word; `DockerRun.for_podman` turns one into podman's argv, changing only what this host or the
harness needs (`HOST_FLAGS`, the image, the host side of ``-p``, a container name), so the
README cannot drift from what the tests run.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

# What this host needs besides the README's command: crun fails on its cgroups (v1, hybrid),
# so runc; and without CAP_SYS_RESOURCE the runtime may not raise the rlimits podman asks for
# by default ("error setting rlimit type 7: operation not permitted"), so explicit ones.
HOST_FLAGS = ("--runtime", "runc", "--ulimit", "nofile=1024:1024",
              "--ulimit", "nproc=1024:1024")
# `docker run` options that take a value (as the next word, or after "=")
VALUE_OPTIONS = frozenset({"-p", "--publish", "-u", "--user", "--tmpfs", "-v", "--volume",
                           "-e", "--env", "--mount", "--name", "-w", "--workdir", "--network",
                           "--entrypoint", "--ulimit", "--runtime"})
FLAG_OPTIONS = frozenset({"--rm", "--read-only", "-d", "--detach", "-i", "-t", "-it",
                          "--init"})


class ReadmeCommandError(AssertionError):
    """The README's command is not what the tests can run (the message says what to fix)."""


# --- the README's commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class DockerRun:
    """One ``docker run`` command: its options (name, value or None) in order, image, argv."""

    options: tuple[tuple[str, str | None], ...]
    image: str
    argv: tuple[str, ...]

    def values(self, *names: str) -> list[str]:
        return [v for n, v in self.options if n in names and v is not None]

    @property
    def app_volume(self) -> tuple[str, str]:
        """(source, target) of the one ``-v`` that mounts an app at /opt/apps/<name>."""
        found = [v.split(":") for v in self.values("-v", "--volume")
                 if v.split(":")[1:2] and v.split(":")[1].startswith("/opt/apps/")]
        if len(found) != 1:
            raise ReadmeCommandError(f"expected one -v ...:/opt/apps/<name>:ro, got {found}")
        return found[0][0], found[0][1]

    @property
    def container_port(self) -> int:
        """The container side of the one ``-p HOST:CONTAINER``."""
        published = self.values("-p", "--publish")
        if len(published) != 1:
            raise ReadmeCommandError(f"expected one -p HOST:CONTAINER, got {published}")
        return int(published[0].rsplit(":", 1)[1])

    def renamed(self, old: str, new: str) -> DockerRun:
        """The same command for the bundle ``new`` (every ``old`` in it replaced), as the README
        says to use it for any bundle."""
        return replace(self, options=tuple((n, None if v is None else v.replace(old, new))
                                           for n, v in self.options),
                       argv=tuple(word.replace(old, new) for word in self.argv))

    def for_podman(self, *, image: str, host_port: int, name: str, cwd: Path,
                   app_mount: tuple[str, str] | None = None) -> list[str]:
        """``podman run`` words for this command: `HOST_FLAGS` and ``--name`` added, ``image``
        for the README's image, ``-p 127.0.0.1:host_port:CONTAINER`` (loopback, a free port),
        ``$PWD`` as the shell would expand it in ``cwd``; ``app_mount`` (option, value) in place
        of the app's ``-v`` (e.g. ``--mount type=image,...``)."""
        words = ["run", *HOST_FLAGS, "--name", name]
        app_source, _target = self.app_volume
        for option, value in self.options:
            if value is None:
                words.append(option)
            elif option in ("-p", "--publish"):
                words += [option, f"127.0.0.1:{host_port}:{value.rsplit(':', 1)[1]}"]
            elif (option in ("-v", "--volume") and value.startswith(app_source + ":")
                  and app_mount is not None):
                words += list(app_mount)
            else:
                words += [option, value.replace("$PWD", str(cwd))]
        return [*words, image, *self.argv]


def parse_docker_run(words: list[str]) -> DockerRun:
    """``docker run OPTIONS IMAGE ARGV...`` (``words`` after ``docker run``)."""
    options: list[tuple[str, str | None]] = []
    rest = iter(words)
    for word in rest:
        if not word.startswith("-"):
            return DockerRun(options=tuple(options), image=word, argv=tuple(rest))
        option, equals, value = word.partition("=")
        if option in VALUE_OPTIONS:
            options.append((option, value if equals else next(rest, None)))
        elif word in FLAG_OPTIONS:
            options.append((word, None))
        else:
            raise ReadmeCommandError(f"docker run option {word!r} is unknown to "
                                     "tests/podman_engine.py: add it to VALUE_OPTIONS or "
                                     "FLAG_OPTIONS")
    raise ReadmeCommandError(f"no image in docker run {shlex.join(words)}")


def shell_commands(block: str) -> Iterator[list[str]]:
    """The commands of an ``sh`` block as words (continuation lines joined, comments dropped)."""
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            yield words


def readme_docker_runs(readme: Path) -> list[DockerRun]:
    """Every ``docker run`` command in the ``sh`` fenced blocks of ``readme``, in order."""
    blocks = re.findall(r"^```sh\n(.*?)^```", readme.read_text(), flags=re.MULTILINE | re.DOTALL)
    return [parse_docker_run(words[2:]) for block in blocks for words in shell_commands(block)
            if words[:2] == ["docker", "run"]]


def readme_docker_run(readme: Path, app: str) -> DockerRun:
    """The README's ``docker run`` command that mounts ``app`` at /opt/apps/<app>."""
    found = [run for run in readme_docker_runs(readme)
             if run.app_volume[1] == f"/opt/apps/{app}"]
    if len(found) != 1:
        raise ReadmeCommandError(f"README.md has {len(found)} docker run commands mounting "
                                 f"/opt/apps/{app}; the tests run exactly one")
    return found[0]


# --- podman with a store of its own ---------------------------------------------------------------


@dataclass
class Podman:
    """``podman`` with its store under ``store`` (images, containers, run state)."""

    store: Path
    containers: list[str] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.store / "root"), "--runroot",
                str(self.store / "run"), "--storage-driver", "overlay", *args]

    def run(self, *args: str, timeout: float = 300,
            stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, check=False,
                              timeout=timeout, stdin=stdin)

    def check(self, *args: str, timeout: float = 300) -> str:
        proc = self.run(*args, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"podman {shlex.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr[-3000:]}")
        return proc.stdout

    def import_root(self, root: Path, tag: str) -> None:
        """``tar -C root -c . | podman import - tag``: the directory as a one-layer image."""
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            proc = self.run("import", "-", tag, stdin=tar.stdout.fileno(), timeout=600)
        finally:
            tar.stdout.close()
            tar_status = tar.wait(timeout=60)
        if proc.returncode != 0 or tar_status != 0:
            raise AssertionError(f"importing {root} failed (tar {tar_status}):\n"
                                 f"{proc.stderr[-3000:]}")

    def start(self, words: list[str], *, log: Path) -> Started:
        """``podman RUN-WORDS`` in the foreground, output to ``log``; its ``--name`` is removed
        by `remove_all`."""
        name = words[words.index("--name") + 1]
        self.containers.append(name)
        with log.open("wb") as out:
            proc = subprocess.Popen(self.argv(*words), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        return Started(proc=proc, log=log, name=name)

    def remove(self, name: str) -> None:
        """``podman rm -f`` (the container is stopped, SIGKILL after 5 s)."""
        self.run("rm", "--force", "--time", "5", name, timeout=120)

    def remove_all(self) -> None:
        while self.containers:
            self.remove(self.containers.pop())

    def destroy(self) -> None:
        """Remove our containers, images and the store itself."""
        self.remove_all()
        self.run("rmi", "--all", "--force", timeout=300)
        mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                   if line.split()[1].startswith(str(self.store))]
        for point in sorted(mounted, reverse=True):
            subprocess.run(["umount", point], check=False, capture_output=True)
        shutil.rmtree(self.store, ignore_errors=True)


@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    log: Path
    name: str

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def minbase_image(podman: Podman, root: Path) -> str:
    """``root`` (a cached minbase root) imported into ``podman``'s store; its tag, named after
    the root's cache key (so another root is another image)."""
    tag = "localhost/builder-test/" + re.sub(r"[^a-z0-9._-]+", "-", root.name.lower())
    if podman.run("image", "exists", tag, timeout=60).returncode != 0:
        podman.import_root(root, tag)
    return tag
