"""Known Node.js applications: the ``[node]`` settings proposed for their recipes.

code-server's own ``postinstall.sh`` runs ``npm install --omit=dev`` in ``lib/vscode`` and
``lib/vscode/extensions``: a resolve against the registry at install time (the shipped
``lib/vscode/npm-shrinkwrap.json`` is out of sync with its package.json: ``tslib`` is missing),
so it never runs here. Instead each nested project is installed with ``npm ci`` from a lock we
commit, its symlinks are made as the script makes them, and the extensions' own postinstall
(which prunes typescript) runs as a project script.
"""

from __future__ import annotations

from builder.node.debheaders import KRB5_HEADER_PACKAGES
from builder.node.spec import Exemption, Link, NodeAppSpec, ProjectScript

_CS = "node_modules/code-server"
_VS = f"{_CS}/lib/vscode"

CODE_SERVER = NodeAppSpec(
    package="code-server",
    version="4.139.1",
    nested=("lib/vscode", "lib/vscode/extensions"),
    # argon2 hashes passwords (built from source); code-server's postinstall is replaced
    # by the steps below. lib/vscode's package.json carries upstream's own allowScripts (it
    # denies koffi, ssh2 and cpu-features, which then stay prebuilt or pure JS).
    allow_scripts=(("argon2", True), ("code-server", False)),
    links=(
        Link(path=f"{_VS}/bin/remote-cli/code-server", target="code-linux.sh"),
        Link(path=f"{_VS}/bin/helpers/browser.sh", target="browser-linux.sh"),
    ),
    scripts=(ProjectScript(project=f"{_VS}/extensions", script="postinstall"),),
    drop=(
        # @parcel/watcher loads @parcel/watcher-<platform> before its own build/Release
        f"{_VS}/node_modules/@parcel/watcher-linux-*",
        # node-gyp-build prefers build/Release; the prebuilds (glibc 2.34, libstdc++) are dead
        "node_modules/argon2/prebuilds",
    ),
    # kerberos includes <gssapi/gssapi.h> and dlopens the libraries at run time
    build_headers=KRB5_HEADER_PACKAGES,
    exempt=(
        Exemption(
            pattern=f"{_VS}/extensions/microsoft-authentication/dist/*msal*",
            reason="the MSAL desktop broker (needs GTK, WebKit, X11 and glibc 2.34): loaded "
            "only on desktops, never in a server container; shipped prebuilt, no source",
        ),
        Exemption(
            pattern=f"{_VS}/node_modules/@microsoft/mxc-sdk/bin/*",
            reason="container-execution helpers shipped prebuilt (glibc 2.34), no source; "
            "run only by the agent sandbox feature",
        ),
        Exemption(
            pattern=f"{_VS}/node_modules/@github/copilot-sdk/node_modules/@koromix/koffi-*",
            reason="koffi's prebuilt FFI module (libstdc++, glibc 2.25): VS Code's allowScripts "
            "denies its build script; needs no newer libstdc++ than node itself",
        ),
    ),
)

KNOWN_APPS = {CODE_SERVER.package: CODE_SERVER}
