"""The two ways installing a wheel fails, told apart because they need opposite fixes.

- A **damaged wheel** (not a zip, a member whose bytes differ from its RECORD hash, no usable
  ``.dist-info``): the file is bad; fetching it again may help, else another version must be pinned.
- An **install conflict**: the wheel is fine but two distributions (or a distribution and the
  interpreter) put different bytes at one path; no download fixes that, the requirements must.
"""

from __future__ import annotations

from pathlib import Path

from builder.errors import BuilderError


class CorruptWheelError(BuilderError):
    """A wheel that cannot be read as the wheel it claims to be."""

    def __init__(self, *, wheel: Path, problem: str) -> None:
        self.wheel = wheel
        self.problem = problem
        super().__init__(
            f"cannot install {wheel.name}: the wheel is damaged or malformed: {problem}",
            where=str(wheel),
            hint=(
                f"delete {wheel.parent} from the cache and build again; if the same error comes "
                "back, the published wheel itself is broken: pin another version of it"
            ),
        )


class InstallConflictError(BuilderError):
    """Two distributions (or a distribution and the interpreter) write different bytes to one
    path; pip would silently keep whichever it installed last."""

    def __init__(self, *, path: str, installing: str, owner: str | None,
                 shipped_by: str | None, wheel: Path) -> None:
        self.path = path
        self.installing = installing
        self.owner = owner
        if owner is None:
            ships = f"the interpreter's {shipped_by}" if shipped_by else "the interpreter itself"
            what = (f"{installing} would overwrite {path}, which {ships} ships, "
                    "with different contents")
            hint = (f"drop {installing.partition(' ')[0]} from [packages] requirements if the "
                    "interpreter already provides it, or use an interpreter without that file")
        else:
            what = f"{installing} and {owner} both install {path}, with different contents"
            hint = ("pip would keep whichever it installed last; builder does not guess. Drop "
                    "one of the two from [packages] requirements (or pin versions that agree on "
                    "this file) and lock again")
        super().__init__(f"install conflict: {what}", where=str(wheel), hint=hint)
