"""Write a launch plan into a staged bundle; never overwrite what the other stages made."""

from __future__ import annotations

import shutil
from pathlib import Path

from builder.errors import BuilderError, InternalError
from builder.launch.model import LaunchPlan


def apply_launch(plan: LaunchPlan, bundle_root: Path) -> None:
    for planned in plan.files:
        dest = bundle_root / planned.path
        if dest.exists() or dest.is_symlink():
            raise BuilderError(
                f"{planned.path} already exists in the bundle",
                where=str(bundle_root),
                hint="a package installs a file the launch layer writes (a console script "
                "named launch?); leave it out of packages.expose",
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        if planned.data is not None:
            dest.write_bytes(planned.data)
        elif planned.source is not None:
            shutil.copyfile(planned.source, dest)
        else:
            raise InternalError(f"planned file {planned.path} has neither data nor a source")
        dest.chmod(0o755 if planned.executable else 0o644)
