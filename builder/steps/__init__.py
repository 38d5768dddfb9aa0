"""builder.steps: the recipe's ``[build]`` steps (Nix's postInstall), run in the staged app
after the packages are installed and before relocation.

``run_build_steps`` runs each step in the sandbox (builder/sandbox.py), twice (in the app and in
a copy of it at another path) so that output depending on time, chance or location fails the
build, and returns a ``StepsReport``: per step its time and the files it wrote; ``origins()``
lets later stages name the step that wrote a file.
"""

from builder.steps.model import StepResult, StepsReport, step_label
from builder.steps.run import DEFAULT_TIMEOUT, run_build_steps
from builder.treewatch import Change, ChangeKind

__all__ = [
    "DEFAULT_TIMEOUT",
    "Change",
    "ChangeKind",
    "StepResult",
    "StepsReport",
    "run_build_steps",
    "step_label",
]
