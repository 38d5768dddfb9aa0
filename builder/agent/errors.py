"""Errors of the agent stage."""

from __future__ import annotations

from builder.errors import BuilderError

REFUSED_HINT = "the archive is malformed or malicious; nothing was installed"


class RefusedBundleError(BuilderError):
    """A bundle the agent will not install: unsafe member, lying manifest, wrong hash, ..."""

    def __init__(self, what: str, *, where: str, hint: str = REFUSED_HINT) -> None:
        super().__init__(what, where=where, hint=hint)


class StoreError(BuilderError):
    """The store is missing something asked for, or is busy."""
