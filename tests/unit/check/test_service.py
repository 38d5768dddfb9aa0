"""The service check's pure parts: interpolation, the URL, accepted answers, the bounded wait."""

from __future__ import annotations

import pytest

from builder.check.service import (
    accepted,
    interpolate,
    service_command,
    service_env,
    to_checked_path,
    url_path,
    wait_for_answer,
)
from builder.errors import BuilderError

HINT = "Backend.AI's interpolator has no escape for a literal brace: rebuild"
W = "r.toml: service"


@pytest.mark.parametrize(("text", "result"), [
    ("{ports[0]}", "8123"),
    ("--port={ports[0]}", "--port=8123"),
    ("plain", "plain"),
    ("", ""),
])
def test_interpolate_like_backend_ai(text: str, result: str) -> None:
    assert interpolate(text, port=8123, where=W) == result


def test_doubled_braces_are_refused_as_backend_ai_does() -> None:
    with pytest.raises(BuilderError, match="a literal brace in"):
        interpolate('{{"a": {ports[0]}}}', port=1, where=W)


@pytest.mark.parametrize(("text", "message"), [
    ("{port}", "r.toml: service: service-def.json: unknown placeholder {port} in '{port}'\n"
     "  hint: only {ports[0]} is filled in; "
     f"{HINT}"),
    ("{ports[1]}", "r.toml: service: service-def.json: unknown placeholder {ports[1]} in "
     "'{ports[1]}'\n  hint: only {ports[0]} is filled in; " + HINT),
    ("{ports[0]!r}", "r.toml: service: service-def.json: unknown placeholder {ports[0]!r} in "
     "'{ports[0]!r}'\n  hint: only {ports[0]} is filled in; " + HINT),
    ("{ports[0]:>5}", "r.toml: service: service-def.json: unknown placeholder {ports[0]:>5} in "
     "'{ports[0]:>5}'\n  hint: only {ports[0]} is filled in; " + HINT),
    ("a}b", "r.toml: service: service-def.json: Single '}' encountered in format string in "
     "'a}b'\n  hint: " + HINT),
    ("{oops", "r.toml: service: service-def.json: expected '}' before end of string in "
     "'{oops'\n  hint: " + HINT),
])
def test_interpolate_refuses_what_backend_ai_cannot_fill(text: str, message: str) -> None:
    with pytest.raises(BuilderError) as info:
        interpolate(text, port=1, where=W)
    assert str(info.value) == message


@pytest.mark.parametrize(("arg", "result"), [
    ("/opt/apps/x", "/c/app"),
    ("/opt/apps/x/bin/launch", "/c/app/bin/launch"),
    ("/opt/apps/xy/bin/launch", "/opt/apps/xy/bin/launch"),  # another app
    ("--root=/opt/apps/x", "--root=/opt/apps/x"),  # only a leading path is moved
    ("relative", "relative"),
])
def test_the_mount_point_is_mapped_to_the_checked_tree(arg: str, result: str) -> None:
    assert to_checked_path(arg, final_root="/opt/apps/x", app="/c/app/") == result


def test_service_command_binds_loopback_only_through_the_launcher() -> None:
    command = ("/opt/apps/x/bin/launch", "--port", "{ports[0]}", "--ip", "0.0.0.0",
               "--allow-root")
    assert service_command(command, launcher=True, port=9, final_root="/opt/apps/x",
                           app="/c/app", where=W) == (
        "/c/app/bin/launch", "--port", "9", "--ip", "0.0.0.0", "--allow-root",
        "--ip", "127.0.0.1")
    assert service_command(("/opt/apps/x/bin/srv", "{ports[0]}"), launcher=False, port=9,
                           final_root="/opt/apps/x", app="/c/app", where=W) == (
        "/c/app/bin/srv", "9")


def test_service_env_is_interpolated_and_mapped() -> None:
    env = (("A", "x"), ("DIR", "/opt/apps/x/share"), ("P", "{ports[0]}"))
    assert service_env(env, port=7, final_root="/opt/apps/x", app="/c/app", where=W) == {
        "A": "x", "DIR": "/c/app/share", "P": "7"}


@pytest.mark.parametrize(("template", "path"), [
    ("{protocol}://{host}:{port}/tree", "/tree"),
    ("{protocol}://{host}:{port}", "/"),
    ("{protocol}://{host}:{port}/", "/"),
    ("{protocol}://{host}:{port}/lab?x=1", "/lab?x=1"),
])
def test_url_path(template: str, path: str) -> None:
    assert url_path(template, where=W) == path


def test_url_path_refuses_a_template_not_written_by_the_launch_layer() -> None:
    with pytest.raises(BuilderError) as info:
        url_path("http://localhost:8888/tree", where=W)
    assert str(info.value) == (
        "r.toml: service: service-def.json: url_template 'http://localhost:8888/tree' does not "
        "start with {protocol}://{host}:{port}\n  hint: rebuild: the launch layer writes this "
        "file")


@pytest.mark.parametrize(("status", "ok"), [
    (200, True), (204, True), (302, True), (399, True), (401, True), (403, True),
    (199, False), (400, False), (404, False), (405, False), (500, False), (503, False),
])
def test_accepted_statuses(status: int, ok: bool) -> None:
    assert accepted(status) is ok


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if len(self.sleeps) > 10_000:
            raise AssertionError("the wait has no bound")
        self.sleeps.append(seconds)
        self.now += seconds


def prober(answers: list[int | str], time: FakeTime, cost: float = 1.0):  # type: ignore[no-untyped-def]
    asked: list[tuple[str, float]] = []

    def probe(url: str, *, timeout: float) -> int | str:
        asked.append((url, timeout))
        time.now += cost
        return answers.pop(0) if answers else "connection refused"
    probe.asked = asked  # type: ignore[attr-defined]
    return probe


def test_wait_goes_on_through_refusals_and_unaccepted_answers() -> None:
    t = FakeTime()
    probe = prober(["connection refused", 503, 404, 200], t)
    waited = wait_for_answer("http://u", probe=probe, poll=lambda: None, clock=t.clock,
                             sleep=t.sleep, bound=60)
    assert waited.status == 200 and waited.exit_code is None
    assert waited.seconds == pytest.approx(4 + 3 * 0.25)
    assert len(probe.asked) == 4


def test_wait_ends_at_the_bound_with_the_last_answer() -> None:
    t = FakeTime()
    probe = prober([404] * 100, t, cost=2.0)
    waited = wait_for_answer("http://u", probe=probe, poll=lambda: None, clock=t.clock,
                             sleep=t.sleep, bound=5)
    assert waited.status is None and waited.exit_code is None and waited.last == "HTTP 404"
    assert 5 <= waited.seconds <= 7.5
    assert all(timeout <= 5 for _, timeout in probe.asked)  # no request outlives the bound


def test_wait_ends_when_the_process_exits() -> None:
    t = FakeTime()
    codes = iter([None, None, 3])
    waited = wait_for_answer("http://u", probe=prober([], t), poll=lambda: next(codes),
                             clock=t.clock, sleep=t.sleep, bound=60)
    assert waited.status is None and waited.exit_code == 3
    assert waited.last == "connection refused"
