from __future__ import annotations

import pytest

from builder.errors import UsageError
from builder.oci.reference import ImageRef, ImageReferenceError, parse_reference

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("127.0.0.1:5000/apps/tiny:1.0", "127.0.0.1:5000", "apps/tiny", "1.0", None),
    ("oci://127.0.0.1:5000/apps/tiny:1.0", "127.0.0.1:5000", "apps/tiny", "1.0", None),
    ("localhost/tiny:v2_x-y.z", "localhost", "tiny", "v2_x-y.z", None),
    ("ghcr.io/org/sub/jupyter-6:6.5.7", "ghcr.io", "org/sub/jupyter-6", "6.5.7", None),
    (f"ghcr.io/org/tiny@{DIGEST}", "ghcr.io", "org/tiny", None, DIGEST),
    (f"ghcr.io/org/tiny:1.0@{DIGEST}", "ghcr.io", "org/tiny", "1.0", DIGEST),
    ("docker.io/tiny:1", "docker.io", "library/tiny", "1", None),
    ("[::1]:5000/a__b/c.d:t", "[::1]:5000", "a__b/c.d", "t", None),
])
def test_good_references(text: str, registry: str, repository: str, tag: str | None,
                         digest: str | None) -> None:
    ref = parse_reference(text)
    assert ref == ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)
    assert ref.reference == (digest or tag)


def test_str_round_trips_and_pins() -> None:
    ref = parse_reference("127.0.0.1:5000/apps/tiny:1.0")
    assert str(ref) == "127.0.0.1:5000/apps/tiny:1.0"
    assert str(ref.with_digest(DIGEST)) == f"127.0.0.1:5000/apps/tiny@{DIGEST}"
    assert parse_reference("docker.io/org/x:1").api_host == "registry-1.docker.io"


HINT = "\n  hint: write it as REGISTRY/REPO:TAG, e.g. 127.0.0.1:5000/apps/tiny:1.0"


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty image reference"),  # no location to show
    ("tiny:1.0", "tiny:1.0: the registry is missing"),
    ("apps/tiny:1.0", "apps/tiny:1.0: the registry is missing"),
    ("https://reg.io/tiny:1", "https://reg.io/tiny:1: an image reference has no URL scheme "
     "(other than oci://)"),
    ("reg.io/Tiny:1", "reg.io/Tiny:1: bad repository component 'Tiny': lowercase letters and "
     "digits, separated by '.', '_', '__' or '-'"),
    ("reg.io/a//b:1", "reg.io/a//b:1: bad repository component '': lowercase letters and "
     "digits, separated by '.', '_', '__' or '-'"),
    ("reg.io/tiny:-x", "reg.io/tiny:-x: bad tag '-x': up to 128 letters, digits, '_', '.', "
     "'-' (not first)"),
    ("reg.io/tiny", "reg.io/tiny: a tag or digest is needed (REPO:TAG or REPO@sha256:HEX)"),
    ("reg.io/:1", "reg.io/:1: the repository is missing"),
    ("reg.io/tiny@sha256:abc", "reg.io/tiny@sha256:abc: bad digest 'sha256:abc': expected "
     "sha256:<64 hex digits>"),
    ("re_g.io:50/tiny:1", "re_g.io:50/tiny:1: bad registry 're_g.io:50'"),
    ("reg.io:port/tiny:1", "reg.io:port/tiny:1: bad registry 'reg.io:port'"),
])
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(ImageReferenceError) as info:
        parse_reference(text)
    assert str(info.value) == message + HINT
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_a_push_needs_a_tag() -> None:
    with pytest.raises(ImageReferenceError, match="a tag is needed to push"):
        parse_reference(f"reg.io/tiny@{DIGEST}", require_tag=True)
