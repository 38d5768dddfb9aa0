"""Run pip with PEP 508 markers evaluated for a *target* environment, not the build host.

pip's ``--platform/--python-version/--abi`` choose wheel tags for another machine, but markers
(``platform_machine == "aarch64"``) are still evaluated against the running interpreter. This
module, run as ``python -m builder.tools.pip_target ENV_JSON [SDISTS_JSON] -- PIP_ARGS...``,
replaces the marker environment in pip's vendored ``packaging`` before pip starts, so an aarch64
lock made on x86_64 takes the aarch64 branch of every marker.

``SDISTS_JSON`` (optional): ``true`` or a list of canonical project names that may be taken
as source distributions although pip runs with ``--only-binary=:all:``. pip refuses sdists
together with ``--platform`` ("not guaranteed to be locally compatible") because it would
build them on *this* machine; builder allows them only where the recipe says so, takes pip's
metadata for their dependencies, and builds their wheels itself, at build time, from locked
build dependencies (``builder.sdist``). Every other project stays wheels-only.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(argv: list[str]) -> int:
    if not argv or "--" not in argv[1:3]:
        print("usage: python -m builder.tools.pip_target ENV_JSON [SDISTS_JSON] -- PIP_ARGS...",
              file=sys.stderr)
        return 2
    split = argv.index("--")
    overrides: dict[str, str] = json.loads(argv[0])
    sdists: bool | list[str] = json.loads(argv[1]) if split == 2 else False
    from pip._vendor.packaging import markers

    original = markers.default_environment

    def target_environment() -> dict[str, str]:
        env = {key: str(value) for key, value in original().items()}
        env.update(overrides)
        return env

    markers.default_environment = target_environment  # type: ignore[assignment]
    if sdists:
        _allow_sdists(sdists)
    from pip._internal.cli.main import main as pip_main

    return int(pip_main(argv[split + 1:]) or 0)


def _allow_sdists(allowed: bool | list[str]) -> None:
    """Let pip take source distributions of ``allowed`` projects (True: any) as candidates."""
    from pip._internal.cli import cmdoptions
    from pip._internal.models.format_control import FormatControl
    from pip._vendor.packaging.utils import canonicalize_name

    names = None if allowed is True else {canonicalize_name(n) for n in allowed or ()}
    binary_only = FormatControl(set(), {":all:"})
    check = cmdoptions.check_dist_restriction

    def check_dist_restriction(options: Any, check_target: bool = False) -> None:
        saved = options.format_control
        options.format_control = binary_only  # the rest of pip's checks still apply
        try:
            check(options, check_target)
        finally:
            options.format_control = saved

    allowed_formats = FormatControl.get_allowed_formats

    def get_allowed_formats(self: FormatControl, canonical_name: str) -> frozenset[str]:
        if names is None or canonicalize_name(canonical_name) in names:
            return frozenset({"binary", "source"})
        return allowed_formats(self, canonical_name)

    cmdoptions.check_dist_restriction = check_dist_restriction
    FormatControl.get_allowed_formats = get_allowed_formats  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
