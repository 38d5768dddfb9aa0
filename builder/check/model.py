"""The check plan (pure data, made by ``builder.check.plan``) and the report of a run.

Paths are POSIX and relative to the app root (``app/``) unless said otherwise: the tree moves
while it is checked, so the plan never holds an absolute path into it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportTarget:
    module: str  # a top-level import root, e.g. "notebook" or "google.protobuf"
    distributions: tuple[str, ...]  # "name version" of each distribution installing it, sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedModule:
    module: str
    distributions: tuple[str, ...]
    reason: str  # "checks.import_skip" or the built-in reason


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandCheck:
    index: int  # position in checks.commands (0-based, as in the recipe's key path)
    argv: tuple[str, ...]  # argv[0]: a command on PATH, or a path relative to the app root


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceCheck:
    """The service as Backend.AI starts it (service-def.json), answered over HTTP."""

    command: tuple[str, ...]  # service-def.json "command", not yet interpolated
    env: tuple[tuple[str, str], ...]  # service-def.json "env", not yet interpolated, sorted
    url_path: str  # what url_template asks for after the host and port, e.g. "/tree"
    launcher: bool  # command[0] is the bundle's bin/launch (it takes --ip)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPlan:
    recipe_path: str  # for "where" in messages
    final_root: str  # /opt/apps/<name>: service-def paths start with it
    python: str  # the bundle's interpreter, e.g. "python/bin/python3.11"
    path: tuple[str, ...]  # directories put first on PATH for check commands ("bin", ...)
    imports: tuple[ImportTarget, ...]  # empty: no import check
    skipped: tuple[SkippedModule, ...]
    unused_skips: tuple[str, ...]  # checks.import_skip entries that matched nothing
    commands: tuple[CommandCheck, ...]
    service: ServiceCheck | None
    service_note: str | None  # why a [service] is not checked, for the log
    timeout: int  # seconds: each command, and the service's first answer


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    name: str  # "imports", "command 1", "service"
    seconds: float
    detail: str  # one line for the log


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    results: tuple[CheckResult, ...]  # in the order they ran

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)
