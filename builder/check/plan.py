"""The check plan of one bundle: the recipe's ``[checks]``, the installed distributions (their
RECORD files in site-packages) and the written ``service-def.json``. Reads, never writes."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from builder.check.model import CheckPlan, CommandCheck, ServiceCheck
from builder.check.modules import Distribution, record_paths, select_imports
from builder.check.service import url_path
from builder.errors import BuilderError, InternalError
from builder.recipe.model import Protocol, Recipe

SERVICE_DEF = "service-def.json"  # beside app/, written by the launch layer
PATH_DIRS = ("bin", "python/bin")  # relative to app/: first on PATH for check commands


def installed_distributions(site_packages: Path) -> tuple[Distribution, ...]:
    """Every ``*.dist-info`` with a RECORD in ``site_packages``, sorted by name."""
    found = []
    for info in sorted(site_packages.glob("*.dist-info")):
        record = info / "RECORD"
        if not record.is_file():
            continue
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found.append(Distribution(name=canonicalize_name(name), version=version,
                                  files=record_paths(record.read_text(encoding="utf-8"))))
    return tuple(sorted(found, key=lambda d: d.name))


def plan_checks(recipe: Recipe, *, bundle_root: Path, python: str,
                site_packages: PurePosixPath) -> CheckPlan:
    """What to check in the tree at ``bundle_root`` (``python`` and ``site_packages`` are
    relative to ``app/``)."""
    checks = recipe.checks
    if checks.imports:
        selection = select_imports(
            installed_distributions(bundle_root / "app" / site_packages),
            recipe_skips=checks.import_skip)
        imports, skipped, unused = selection.targets, selection.skipped, selection.unused_skips
    else:
        imports, skipped, unused = (), (), ()
    service, note = _service(recipe, bundle_root)
    return CheckPlan(
        recipe_path=recipe.path,
        final_root=recipe.final_root,
        python=python,
        path=PATH_DIRS,
        imports=imports,
        skipped=skipped,
        unused_skips=unused,
        commands=tuple(CommandCheck(index=i, argv=argv) for i, argv in enumerate(checks.commands)),
        service=service,
        service_note=note,
        timeout=checks.timeout,
    )


def _service(recipe: Recipe, bundle_root: Path) -> tuple[ServiceCheck | None, str | None]:
    if recipe.service is None:
        return None, None
    if not recipe.checks.service:
        return None, "not checked (checks.service = false)"
    if recipe.service.protocol is not Protocol.HTTP:
        return None, f"not checked (protocol {recipe.service.protocol.value}: no HTTP to ask)"
    where = str(bundle_root / SERVICE_DEF)
    try:
        data: Any = json.loads((bundle_root / SERVICE_DEF).read_text(encoding="utf-8"))
        command = tuple(str(a) for a in data["command"])
        # as Backend.AI's kernel runner: default_arguments follow the command (name, value)
        for name, value in data.get("default_arguments", {}).items():
            words = [] if value is None else [value] if isinstance(value, str) else value
            command += (str(name), *(str(w) for w in words))
        env = tuple(sorted((str(k), str(v)) for k, v in data["env"].items()))
        template = str(data["url_template"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InternalError(f"{where} is missing or malformed after the launch layer: "
                            f"{exc!r}") from None
    if not command:
        raise BuilderError("service-def.json: the command is empty", where=where)
    return ServiceCheck(command=command, env=env,
                        url_path=url_path(template, where=f"{recipe.path}: service.url_template"),
                        launcher=command[0].endswith("/bin/launch")), None
