"""The service check's pure parts: Backend.AI's interpolation of service-def.json, the URL to
ask, which HTTP answers count, and the bounded wait for the first answer (ports for the HTTP
probe, the process and the clock, so tests pass fakes).

Accepted answers (after following redirects): 2xx and 3xx (the page, or a redirect urllib does
not follow further), and 401/403 (the server is up and guards the page: code-server's login,
a token). Not accepted: 404 and other 4xx (``url_template`` points nowhere: the user's link in
Backend.AI would fail the same way) and 5xx (the server runs but the app is broken). The wait
goes on through refused connections and unaccepted answers (a server may answer 404 or 503
while it starts) until the bound; then the last answer or error is reported.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from builder.errors import BuilderError

LOOPBACK = "127.0.0.1"
URL_PREFIX = "{protocol}://{host}:{port}"  # how service-def.json's url_template starts
AUTH_STATUSES = (401, 403)
POLL_INTERVAL = 0.25  # seconds between two tries
PROBE_TIMEOUT = 5.0  # seconds for one HTTP request
NO_BRACES = "Backend.AI's interpolator has no escape for a literal brace: rebuild"


def accepted(status: int) -> bool:
    """Whether an HTTP status (after redirects) shows the service answers at its URL."""
    return 200 <= status < 400 or status in AUTH_STATUSES


def interpolate(text: str, *, port: int, where: str) -> str:
    """``text`` through Backend.AI's interpolator: ``{ports[0]}`` is the port; any other field
    or brace is refused (Backend.AI would fail on it too: it has no escape for a brace)."""
    out = []
    try:
        for literal, field, spec, conversion in string.Formatter().parse(text):
            if "{" in literal or "}" in literal:  # {{ or }}: Backend.AI refuses them
                raise BuilderError(f"service-def.json: a literal brace in {text!r}", where=where,
                                   hint=NO_BRACES)
            out.append(literal)
            if field is None:
                continue
            if field != "ports[0]" or spec or conversion:
                shown = "{" + field + ("!" + conversion if conversion else "") + \
                    (":" + spec if spec else "") + "}"
                raise BuilderError(f"service-def.json: unknown placeholder {shown} in {text!r}",
                                   where=where, hint="only {ports[0]} is filled in; "
                                   f"{NO_BRACES}")
            out.append(str(port))
    except ValueError as exc:
        raise BuilderError(f"service-def.json: {exc} in {text!r}", where=where,
                           hint=NO_BRACES) from None
    return "".join(out)


def to_checked_path(arg: str, *, final_root: str, app: str) -> str:
    """An argument naming the mount point (``/opt/apps/<name>[/...]``) moved to ``app``."""
    root = final_root.rstrip("/")
    if arg == root or arg.startswith(root + "/"):
        return app.rstrip("/") + arg[len(root):]
    return arg


def service_command(command: tuple[str, ...], *, launcher: bool, port: int, final_root: str,
                    app: str, where: str) -> tuple[str, ...]:
    """The argv a kernel runner would start, for ``port`` on loopback, from ``app``."""
    argv = [to_checked_path(interpolate(a, port=port, where=where), final_root=final_root, app=app)
            for a in command]
    if launcher:  # the launcher takes the last --ip: bind loopback only, whatever came before
        argv += ["--ip", LOOPBACK]
    return tuple(argv)


def service_env(env: tuple[tuple[str, str], ...], *, port: int, final_root: str, app: str,
                where: str) -> dict[str, str]:
    return {interpolate(k, port=port, where=where):
            to_checked_path(interpolate(v, port=port, where=where), final_root=final_root,
                            app=app)
            for k, v in env}


def url_path(url_template: str, *, where: str) -> str:
    """The path part of service-def.json's ``url_template`` (``/`` when it has none)."""
    if not url_template.startswith(URL_PREFIX):
        raise BuilderError(f"service-def.json: url_template {url_template!r} does not start with "
                           f"{URL_PREFIX}", where=where,
                           hint="rebuild: the launch layer writes this file")
    rest = url_template[len(URL_PREFIX):]
    return rest if rest.startswith("/") else "/" + rest


class Probe(Protocol):
    def __call__(self, url: str, *, timeout: float) -> int | str:
        """The HTTP status ``url`` answers with (redirects followed), or why there is none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Waited:
    status: int | None  # the accepted status, or None
    seconds: float  # until the answer, the exit or the bound
    last: str  # the last unaccepted answer or error ("connection refused", "HTTP 404")
    exit_code: int | None  # the process ended before answering


def wait_for_answer(url: str, *, probe: Probe, poll: Callable[[], int | None],
                    clock: Callable[[], float], sleep: Callable[[float], None],
                    bound: float) -> Waited:
    """Ask ``url`` until an accepted answer, the process's end or ``bound`` seconds."""
    start = clock()
    last = "no answer yet"
    while True:
        code = poll()
        if code is not None:
            return Waited(status=None, seconds=clock() - start, last=last, exit_code=code)
        left = bound - (clock() - start)
        if left <= 0:
            return Waited(status=None, seconds=clock() - start, last=last, exit_code=None)
        answer = probe(url, timeout=min(PROBE_TIMEOUT, left))
        if isinstance(answer, int) and accepted(answer):
            return Waited(status=answer, seconds=clock() - start, last=f"HTTP {answer}",
                          exit_code=None)
        last = f"HTTP {answer}" if isinstance(answer, int) else answer
        sleep(POLL_INTERVAL)
