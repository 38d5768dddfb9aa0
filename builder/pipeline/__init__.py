"""``builder build``: a pure plan (targets, input digest, names, ordered phases; ``plan``) and
its execution (``execute``)."""

from builder.pipeline.execute import BuildOptions, BuiltBundle, build
from builder.pipeline.plan import Phase, TargetPlan, input_digest, phases_for, plan_target

__all__ = ["BuildOptions", "BuiltBundle", "Phase", "TargetPlan", "build", "input_digest",
           "phases_for", "plan_target"]
