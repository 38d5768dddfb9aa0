"""``REGISTRY/REPO:TAG`` (or ``@sha256:...``) image references, parsed with clear errors.

The grammar is the Distribution project's reference grammar, with one restriction: the registry
must be named (``127.0.0.1:5000/apps/tiny:1.0``, ``ghcr.io/org/tiny:1.0``), because an app
bundle has no business landing on an implicit default registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import UsageError

SCHEME = "oci://"  # accepted (and ignored) in front of a reference, as the agent spells sources
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_REGISTRY = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]+)(?::(?P<port>[0-9]{1,5}))?")
_EXAMPLE = "REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/apps/tiny:1.0"
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


class ImageReferenceError(UsageError):
    """An image reference that does not parse (exit code 2 on the command line)."""

    def __init__(self, what: str, *, reference: str) -> None:
        super().__init__(what, where=reference, hint=f"write it as {_EXAMPLE}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRef:
    registry: str  # host[:port] as written
    repository: str  # "apps/tiny"
    tag: str | None
    digest: str | None  # "sha256:<hex>"

    @property
    def reference(self) -> str:
        """What follows ``/manifests/`` in the registry API: the digest if known, else the tag."""
        if self.digest is not None:
            return self.digest
        if self.tag is None:  # parse() never builds one without either
            raise ImageReferenceError("no tag or digest", reference=str(self))
        return self.tag

    @property
    def api_host(self) -> str:
        """The host to talk to (Docker Hub's API lives on another name than its references)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(registry=self.registry, repository=self.repository, tag=None,
                        digest=digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str, *, require_tag: bool = False) -> ImageRef:
    """Parse ``[oci://]REGISTRY/REPO[:TAG][@sha256:HEX]``; ``require_tag`` for pushes."""
    given = text
    if text.startswith(SCHEME):
        text = text[len(SCHEME):]
    if not text:
        raise ImageReferenceError("empty image reference", reference=given)
    if "://" in text:
        raise ImageReferenceError("an image reference has no URL scheme (other than oci://)",
                                  reference=given)
    digest = None
    if "@" in text:
        text, digest = text.rsplit("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise ImageReferenceError(f"bad digest {digest!r}: expected sha256:<64 hex digits>",
                                      reference=given)
    registry, rest = _split_registry(text, given)
    rest, tag = _split_tag(rest, given)
    if registry == DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    if require_tag and tag is None:
        raise ImageReferenceError("a tag is needed to push (REGISTRY/REPO:TAG)",
                                  reference=given)
    if tag is None and digest is None:
        raise ImageReferenceError("a tag or digest is needed (REPO:TAG or REPO@sha256:HEX)",
                                  reference=given)
    return ImageRef(registry=registry, repository=rest, tag=tag, digest=digest)


def _split_registry(text: str, given: str) -> tuple[str, str]:
    registry, slash, rest = text.partition("/")
    if not slash or not _looks_like_registry(registry):
        raise ImageReferenceError("the registry is missing", reference=given)
    match = _REGISTRY.fullmatch(registry)
    if match is None or not (match["host"].startswith("[") or _HOST.fullmatch(match["host"])):
        raise ImageReferenceError(f"bad registry {registry!r}", reference=given)
    return registry, rest


def _split_tag(rest: str, given: str) -> tuple[str, str | None]:
    """``repo/path[:tag]`` -> (repository, tag), both checked."""
    tag = None
    if ":" in rest.rsplit("/", 1)[-1]:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise ImageReferenceError(
                f"bad tag {tag!r}: up to 128 letters, digits, '_', '.', '-' (not first)",
                reference=given)
    if not rest:
        raise ImageReferenceError("the repository is missing", reference=given)
    for component in rest.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise ImageReferenceError(
                f"bad repository component {component!r}: lowercase letters and digits, "
                "separated by '.', '_', '__' or '-'", reference=given)
    return rest, tag
