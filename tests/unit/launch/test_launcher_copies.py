"""The launcher's modes are shipped as standalone files beside it (``codeserver.py``,
``kernels.py``): each must run on its own, standard library only, so the few helpers they share
with the launcher (``Parser``, ``tcp_port``, ``EXIT_CONFIG``, ...) are copies. Decision: copies,
kept identical by this test (docstrings aside), rather than a shared module that every bundle
would have to ship and every mode import by path. A name both files define differently must be
listed here with the reason."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

LAUNCH = Path(str(resources.files("builder.launch")))
LAUNCHER = "launcher.py"
# mode module -> the names it defines on purpose differently from the launcher
OWN = {
    "launcher_codeserver.py": {
        "main": "the code-server mode's entry point (the launcher's main loads it)",
        "parse_args": "code-server's options (--bind-addr, --auth, options after --)",
        "server_environment": "code-server keeps the image's environment; Jupyter's does not",
    },
    "launcher_kernels.py": {},
}


def _top_level(path: Path) -> dict[str, str]:
    """Each top-level function, class and assigned name, as its AST without docstrings."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        for inner in ast.walk(node):
            if isinstance(inner, ast.FunctionDef | ast.ClassDef) and inner.body and isinstance(
                    inner.body[0], ast.Expr) and isinstance(inner.body[0].value, ast.Constant):
                inner.body = inner.body[1:] or [ast.Pass()]
        for name in names:
            found[name] = ast.dump(node)
    return found


@pytest.mark.parametrize("mode", sorted(OWN))
def test_what_a_mode_shares_with_the_launcher_is_an_identical_copy(mode: str) -> None:
    launcher, copy = _top_level(LAUNCH / LAUNCHER), _top_level(LAUNCH / mode)
    shared = sorted(set(launcher) & set(copy) - set(OWN[mode]))
    differ = [name for name in shared if launcher[name] != copy[name]]
    assert not differ, (f"{mode} and {LAUNCHER} define {', '.join(differ)} differently: copy the "
                        f"launcher's version, or list the name in OWN with the reason")
    assert set(OWN[mode]) <= set(launcher) & set(copy), "OWN names a name no longer shared"
    if mode == "launcher_codeserver.py":
        assert {"Parser", "tcp_port", "EXIT_CONFIG", "_PORT"} <= set(shared)


def test_the_copy_check_sees_a_change(tmp_path: Path) -> None:
    """The comparison is not blind: the copy as shipped compares equal, a changed one not."""
    source = (LAUNCH / "launcher_codeserver.py").read_text(encoding="utf-8")
    changed = tmp_path / "codeserver.py"
    changed.write_text(source.replace("1 <= int(value) <= 65535", "1 <= int(value) <= 65534"))
    launcher = _top_level(LAUNCH / LAUNCHER)["tcp_port"]
    assert _top_level(LAUNCH / "launcher_codeserver.py")["tcp_port"] == launcher
    assert _top_level(changed)["tcp_port"] != launcher


@pytest.mark.parametrize("shipped", [LAUNCHER, *sorted(OWN)])
def test_shipped_scripts_import_only_the_standard_library(shipped: str) -> None:
    """They run inside bundles on the bundle's Python, where builder is not installed."""
    import sys

    tree = ast.parse((LAUNCH / shipped).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))


def test_the_shell_scripts_use_the_launchers_own_values() -> None:
    """bin/launch sets LD_* aside under the prefix the launcher reads them back from."""
    from builder.launch import launcher, scripts

    assert (scripts.SAVED, scripts.LOADER, scripts.EXIT_CONFIG) == (
        launcher.SAVED, launcher.LOADER, launcher.EXIT_CONFIG)
    text = scripts.render_launcher(name="a", version="1", python="python/bin/python3").decode()
    for variable in launcher.LOADER:
        assert f"{launcher.SAVED}{variable}=${variable}" in text
