"""A minimal VS Code extension package (``.vsix``) made on the fly, for install tests.

``make_vsix(dest, publisher="builder-test", name="hello", version="0.0.1")`` writes
``dest/builder-test.hello-0.0.1.vsix``: the zip ``vsce package`` makes, cut to what VS Code reads
(``extension.vsixmanifest``, ``[Content_Types].xml``, ``extension/package.json`` with
``engines.vscode``, and an ``extension/extension.js`` registering one command). The bytes depend
only on the arguments: members sorted as vsce orders them, fixed timestamps and modes.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

EPOCH = (1980, 1, 1, 0, 0, 0)
ENGINE = "^1.80.0"  # code-server 4.139 carries VS Code 1.139

_CONTENT_TYPES = """<?xml version="1.0" encoding="utf-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\
<Default Extension=".js" ContentType="application/javascript"/>\
<Default Extension=".json" ContentType="application/json"/>\
<Default Extension=".vsixmanifest" ContentType="text/xml"/>\
</Types>
"""

_EXTENSION_JS = """\
"use strict";
const vscode = require("vscode");
exports.activate = (context) => {
  context.subscriptions.push(vscode.commands.registerCommand(%s, () => %s));
};
exports.deactivate = () => {};
"""


def extension_id(publisher: str, name: str) -> str:
    """What ``code-server --list-extensions`` prints for it (VS Code lower-cases ids)."""
    return f"{publisher}.{name}".lower()


def package_json(*, publisher: str, name: str, version: str, engine: str = ENGINE,
                 display_name: str | None = None) -> dict[str, object]:
    command = f"{name}.hello"
    return {
        "name": name,
        "publisher": publisher,
        "version": version,
        "displayName": display_name or name,
        "description": f"{name}: a test extension made by builder's tests",
        "license": "MIT",
        "engines": {"vscode": engine},
        "categories": ["Other"],
        "main": "./extension.js",
        "activationEvents": [],
        "contributes": {"commands": [{"command": command, "title": f"Hello from {name}"}]},
    }


def _vsixmanifest(manifest: dict[str, object]) -> str:
    engines = manifest["engines"]
    assert isinstance(engines, dict)

    def attr(key: str) -> str:
        return quoteattr(str(manifest[key]))

    return f"""<?xml version="1.0" encoding="utf-8"?>
<PackageManifest Version="2.0.0" xmlns="http://schemas.microsoft.com/developer/vsx-schema/2011" \
xmlns:d="http://schemas.microsoft.com/developer/vsx-schema-design/2011">
  <Metadata>
    <Identity Language="en-US" Id={attr("name")} Version={attr("version")} \
Publisher={attr("publisher")} />
    <DisplayName>{escape(str(manifest["displayName"]))}</DisplayName>
    <Description xml:space="preserve">{escape(str(manifest["description"]))}</Description>
    <Tags></Tags>
    <Categories>Other</Categories>
    <GalleryFlags>Public</GalleryFlags>
    <Properties>
      <Property Id="Microsoft.VisualStudio.Code.Engine" Value={quoteattr(engines["vscode"])} />
      <Property Id="Microsoft.VisualStudio.Code.ExtensionDependencies" Value="" />
      <Property Id="Microsoft.VisualStudio.Code.ExtensionPack" Value="" />
      <Property Id="Microsoft.VisualStudio.Code.ExtensionKind" Value="workspace" />
      <Property Id="Microsoft.VisualStudio.Code.LocalizedLanguages" Value="" />
    </Properties>
  </Metadata>
  <Installation>
    <InstallationTarget Id="Microsoft.VisualStudio.Code"/>
  </Installation>
  <Dependencies/>
  <Assets>
    <Asset Type="Microsoft.VisualStudio.Code.Manifest" Path="extension/package.json" \
Addressable="true" />
  </Assets>
</PackageManifest>
"""


def make_vsix(dest_dir: Path, *, publisher: str, name: str, version: str,
              engine: str = ENGINE, display_name: str | None = None) -> Path:
    """Write ``dest_dir/<publisher>.<name>-<version>.vsix`` and return its path."""
    manifest = package_json(publisher=publisher, name=name, version=version, engine=engine,
                            display_name=display_name)
    command = f"{name}.hello"
    members = {
        "extension.vsixmanifest": _vsixmanifest(manifest),
        "[Content_Types].xml": _CONTENT_TYPES,
        "extension/package.json": json.dumps(manifest, indent=2, sort_keys=True) + "\n",
        "extension/extension.js": _EXTENSION_JS % (json.dumps(command),
                                                   json.dumps(f"hello from {name}")),
    }
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{publisher}.{name}-{version}.vsix"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():  # vsce's order: the manifests, then extension/
            info = zipfile.ZipInfo(member, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is what extractors see
            info.external_attr = 0o100644 << 16
            archive.writestr(info, text.encode(), compresslevel=9)
    return path
