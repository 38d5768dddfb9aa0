"""Run pip with PEP 508 markers evaluated for a *target* environment, not the build host.

pip's ``--platform/--python-version/--abi`` choose wheel tags for another machine, but markers
(``platform_machine == "aarch64"``) are still evaluated against the running interpreter. This
module, run as ``python -m builder.lock.pip_target ENV_JSON -- PIP_ARGS...``, replaces the marker
environment in pip's vendored ``packaging`` before pip starts, so an aarch64 lock made on x86_64
takes the aarch64 branch of every marker.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print("usage: python -m builder.lock.pip_target ENV_JSON -- PIP_ARGS...", file=sys.stderr)
        return 2
    overrides: dict[str, str] = json.loads(argv[0])
    from pip._vendor.packaging import markers

    original = markers.default_environment

    def target_environment() -> dict[str, str]:
        env = {key: str(value) for key, value in original().items()}
        env.update(overrides)
        return env

    markers.default_environment = target_environment  # type: ignore[assignment]
    from pip._internal.cli.main import main as pip_main

    return int(pip_main(argv[2:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
