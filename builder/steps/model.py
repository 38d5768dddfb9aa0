"""What the build steps did: pure data for the build log, the manifest and error messages.

Paths are relative to the app root, POSIX-style; collections are sorted tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.treewatch import Change, ChangeKind

LABEL_WIDTH = 80


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    index: int  # 1-based, in the recipe's order (build.steps[index - 1])
    argv: tuple[str, ...]
    seconds: float  # the run in the app itself
    check_seconds: float  # the second run, in the copy at another path
    changes: tuple[Change, ...]  # sorted by path

    @property
    def label(self) -> str:
        return step_label(self.index, self.argv)

    @property
    def written(self) -> tuple[str, ...]:
        """Files and links the step added or changed (not directories, not removals)."""
        return tuple(c.path for c in self.changes
                     if c.kind is not ChangeKind.REMOVED and not c.is_dir)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepsReport:
    steps: tuple[StepResult, ...]
    offline: bool  # every step ran in a network namespace of its own
    copy_seconds: float  # making the copy of the app the second runs use

    def origins(self) -> dict[str, str]:
        """Each file a step wrote -> "written by build step N (argv)" (the last step wins), so
        a later error about that file (e.g. a leftover staging path) can name its author."""
        return {path: f"written by {step.label}" for step in self.steps for path in step.written}


def step_label(index: int, argv: tuple[str, ...]) -> str:
    """``build step 2 (jupyter nbextension enable --sys-prefix ...)``, shortened."""
    command = " ".join(argv)  # as builder.sandbox.failure shows it: for people, not shells
    if len(command) > LABEL_WIDTH:
        command = command[: LABEL_WIDTH - 3] + "..."
    return f"build step {index} ({command})"
