"""Backend.AI's service definition (``service-def.json``) and ``service-ports`` label value.

Backend.AI's kernel runner (``backend.ai-kernel``, ``BaseRunner``) reads
``/etc/backend.ai/service-defs/<name>.json`` (the file stem is the service name) with
``ServiceDefinition(**json)``, so the file has exactly its keys and no ``format_version``.
``command``, ``env`` and ``default_arguments`` go through its ``ServiceArgumentInterpolator``
(``{ports[0]}`` is the port it picked). That interpolator reads every ``{...}`` as a template
variable and has no escape for a literal brace (``{{`` is refused too), so a recipe value with a
brace is refused here, at build time. ``url_template`` is for its clients (``{protocol}``,
``{host}``, ``{port}``); it ends in the base URL the command pins (``--base-url`` in
``default_arguments``, not a user argument: the template cannot follow a value chosen later).

How its kernel runner builds the command (``ai.backend.kernel.service.ServiceParser.
start_service``): ``command``, then, for each item of ``default_arguments`` updated with the
user's ``arguments`` (names outside ``allowed_arguments`` are refused), the name followed by its
value (a string: one word; a list: its words; null: the name alone), all interpolated; the
user's ``envs`` must be in ``allowed_envs``, ``env`` is added. So a user's ``--auth password``
lands after ``command`` and wins (the launcher takes the last of a repeated option). The
launcher's ``--base-url`` wins over ``NB_PREFIX``, so an allowed ``NB_PREFIX`` cannot move the
server off ``url_template`` either.
"""

from __future__ import annotations

from typing import Any

from builder.errors import BuilderError
from builder.recipe.model import Protocol, Recipe, ServiceKind

# ports Backend.AI keeps for itself (ai.backend.common.service_ports)
RESERVED_PORTS = frozenset({2000, 2001, 2002, 2003, 2200, 7681})
PORT_PLACEHOLDER = "{ports[0]}"
# Backend.AI's app proxy gives each service its own host:port and forwards paths unchanged
BASE_URL = "/"
ALLOWED_ARGUMENTS = ("--notebook-dir",)
# code-server serves at the root of whatever proxy is in front (no base URL); its password, if
# any, comes from the environment, so auth follows PASSWORD/HASHED_PASSWORD unless --auth says
# otherwise. No default "--auth none" here: it would silently override a password the user set.
CODE_SERVER_ARGUMENTS = ("--auth", "--notebook-dir")
CODE_SERVER_ENVS = ("HASHED_PASSWORD", "PASSWORD")


def literal(text: str, *, where: str) -> str:
    """``text``, which Backend.AI's interpolator must pass through unchanged: refused when it
    has a brace (the interpolator reads ``{...}`` as a variable and cannot escape one)."""
    if "{" in text or "}" in text:
        raise BuilderError(
            f"{text!r} has a brace, which Backend.AI's service-def interpolator reads as a "
            "template variable (it has no escape for a literal brace, not even {{ }})",
            where=where,
            hint="write the value without { and } (e.g. put it in a config file the command reads)")
    return text


def service_ports(recipe: Recipe) -> str:
    """The ``ai.backend.service-ports`` label value, e.g. ``jupyter-6:http:8888``."""
    service = recipe.service
    if service is None:
        raise BuilderError("the recipe has no [service]", where=recipe.path)
    if service.port <= 1024 or service.port >= 65535 or service.port in RESERVED_PORTS:
        raise BuilderError(
            f"service.port {service.port} cannot be a Backend.AI service port (it must be "
            "1025-65534 and not 2000-2003, 2200 or 7681)",
            where=f"{recipe.path}: service.port", hint="choose another port, e.g. 8888",
        )
    # Backend.AI knows http, tcp and preopen; a raw VNC server is a TCP service to it
    protocol = "tcp" if service.protocol is Protocol.VNC else service.protocol.value
    return f"{recipe.name}:{protocol}:{service.port}"


def service_def(recipe: Recipe) -> dict[str, Any]:
    """The service definition: the launcher on the port Backend.AI picks, behind its proxy."""
    service = recipe.service
    if service is None:
        raise BuilderError("the recipe has no [service]", where=recipe.path)
    path = BASE_URL.rstrip("/") + "/" + literal(service.url_template.lstrip("/"),
                                                 where=f"{recipe.path}: service.url_template")
    launcher = literal(f"{recipe.final_root}/bin/launch", where=f"{recipe.path}: app.name")
    command = [launcher, "--port", PORT_PLACEHOLDER]
    arguments: tuple[str, ...] = ALLOWED_ARGUMENTS
    envs = tuple(recipe.ui.accepted_env)
    defaults: dict[str, str] = {"--base-url": BASE_URL}
    if service.kind is ServiceKind.CODE_SERVER:
        # explicit address: an image's LAUNCH_IP must not move it off the port's interface
        command += ["--ip", "0.0.0.0"]  # noqa: S104 (Backend.AI's proxy reaches it there)
        arguments, defaults = CODE_SERVER_ARGUMENTS, {}  # code-server serves at the root
        envs = tuple(sorted({*envs, *CODE_SERVER_ENVS}))
    return {
        "prestart": [],
        "command": [*command, "--platform-auth", "--allow-root"],
        "url_template": "{protocol}://{host}:{port}" + path,
        "allowed_envs": list(envs),
        "allowed_arguments": list(arguments),
        "default_arguments": defaults,
        "env": {literal(k, where=f"{recipe.path}: service.env"):
                literal(v, where=f"{recipe.path}: service.env.{k}") for k, v in service.env},
    }
