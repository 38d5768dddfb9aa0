"""Run by Backend.AI's own Python (backend.ai-kernel, backend.ai-common): what its kernel runner
makes of the service definitions mounted in a root, printed as JSON.

    python backendai_probe.py ROOT SERVICE_PORTS OPTIONS_JSON

As ``ai.backend.kernel.base.BaseRunner`` does: the service-defs directory is the one its
``_init`` names (read from its source), inside ROOT; the ``ai.backend.service-ports`` value goes
through ``ai.backend.common.service_ports.parse_service_ports``; for each service,
``variables["ports"]`` is the service's container ports, then ``ServiceParser.start_service``
with the user's options (``{"arguments": ..., "envs": ...}``, per service name) gives the argv
and environment, and ``get_apps`` the url_template. An option Backend.AI refuses is reported as
``{"refused": "<exception class>: <message>"}`` for that service. Run it with
``BACKEND_REEXECED=1`` and ``VIRTUAL_ENV`` set, as the kernel runner is after the re-exec its
package does on import.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any


def service_defs_dir() -> str:
    from ai.backend.kernel import base

    found = set(re.findall(r'Path\("(/etc/[^"]*service-defs)"\)', inspect.getsource(base)))
    assert len(found) == 1, f"the kernel runner's service-defs directory: {found}"
    return found.pop()


async def probe(root: Path, label: str, options: dict[str, Any]) -> dict[str, Any]:
    from ai.backend.common.service_ports import parse_service_ports
    from ai.backend.kernel.service import ServiceParser

    defs = service_defs_dir()
    ports = parse_service_ports(label, "")
    parser = ServiceParser({"runtime_path": "/usr/bin/python3"})
    await parser.parse(root / defs.lstrip("/"))
    services: dict[str, Any] = {}
    for port in ports:
        name = port["name"]
        parser.variables["ports"] = list(port["container_ports"])
        try:
            argv, env = await parser.start_service(name, [], options.get(name, {}))
        except Exception as exc:
            services[name] = {"refused": f"{type(exc).__name__}: {exc}"}
            continue
        apps = await parser.get_apps(name)
        services[name] = {"argv": None if argv is None else [str(a) for a in argv],
                          "env": dict(env), "ports": list(port["container_ports"]),
                          "protocol": str(port["protocol"].value),
                          "url_template": apps[0].get("url_template") if apps else None}
    return {"service_defs_dir": defs, "services": services}


if __name__ == "__main__":
    result = asyncio.run(probe(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])))
    print(json.dumps(result))
