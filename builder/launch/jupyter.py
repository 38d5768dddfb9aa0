"""Which Jupyter server a bundle runs, and the configuration traits of that version.

Decided once at build time from the installed packages, so the launcher writes one
configuration (``NotebookApp`` or ``ServerApp``), never both.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from builder.errors import BuilderError
from builder.launch.model import Flavor, JupyterServer

# launcher setting -> trait, per flavor (see launcher.config_values for the settings)
_COMMON = {
    "allowed_kernelspecs": "KernelSpecManager.allowed_kernelspecs",  # jupyter_client >= 7
    "ensure_native_kernel": "KernelSpecManager.ensure_native_kernel",
}
_NOTEBOOK6 = {
    **_COMMON,
    "allow_origin": "NotebookApp.allow_origin",
    "allow_root": "NotebookApp.allow_root",
    "base_url": "NotebookApp.base_url",
    "cookie_secret_file": "NotebookApp.cookie_secret_file",
    "ip": "NotebookApp.ip",
    "open_browser": "NotebookApp.open_browser",
    "port": "NotebookApp.port",
    "port_retries": "NotebookApp.port_retries",
    "root_dir": "NotebookApp.notebook_dir",
    "show_banner": "NotebookApp.show_banner",  # the Notebook 7 migration banner (6.5)
    "terminado_settings": "NotebookApp.terminado_settings",
    "token": "NotebookApp.token",
}
_SERVER = {
    **_COMMON,
    "allow_origin": "ServerApp.allow_origin",
    "allow_root": "ServerApp.allow_root",
    "base_url": "ServerApp.base_url",
    "cookie_secret_file": "ServerApp.cookie_secret_file",
    "ip": "ServerApp.ip",
    "open_browser": "ServerApp.open_browser",
    "port": "ServerApp.port",
    "port_retries": "ServerApp.port_retries",
    "root_dir": "ServerApp.root_dir",
    "terminado_settings": "ServerApp.terminado_settings",
    "token": "IdentityProvider.token",  # ServerApp.token is deprecated since Jupyter Server 2
}


def _version(installed: dict[str, str], name: str) -> Version | None:
    try:
        return Version(installed[name]) if name in installed else None
    except InvalidVersion:
        return None


def detect_server(installed: tuple[tuple[str, str], ...], *, where: str) -> JupyterServer:
    """Notebook < 7 runs its own ``NotebookApp``; anything else runs on Jupyter Server >= 2."""
    versions = dict(installed)
    notebook = _version(versions, "notebook")
    server = _version(versions, "jupyter-server")
    if "ipykernel" not in versions:
        raise BuilderError(
            "the Jupyter service needs ipykernel in the bundle (its own Python kernel)",
            where=where, hint="add ipykernel to packages.requirements",
        )
    if notebook is not None and notebook.major < 7:
        return JupyterServer(flavor=Flavor.NOTEBOOK6, version=str(notebook),
                             config_file="jupyter_notebook_config.py",
                             traits=tuple(sorted(_NOTEBOOK6.items())))
    if server is not None and server.major >= 2:
        return JupyterServer(flavor=Flavor.JUPYTER_SERVER, version=str(server),
                             config_file="jupyter_server_config.py",
                             traits=tuple(sorted(_SERVER.items())))
    found = ", ".join(f"{n} {versions[n]}" for n in ("notebook", "jupyter-server")
                      if n in versions) or "neither"
    raise BuilderError(
        f'service.kind = "jupyter" needs notebook < 7 or jupyter-server >= 2 installed '
        f"(found: {found})",
        where=where, hint="add notebook, jupyterlab or jupyter-server to packages.requirements",
    )
