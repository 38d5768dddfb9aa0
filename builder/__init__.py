"""builder: turn a declarative recipe plus a hashed lock into a relocatable app bundle."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__version__ = "0.1.0"


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` (PEP 562) of a package whose ``__init__`` re-exports names
    from its modules: each name is imported from its module (``exports[name]``) on first use,
    so importing one module of the package does not import every other one (``builder agent``
    commands need a few of the agent's modules, not the OCI client, pyelftools and
    http.client). The package keeps the same names under ``TYPE_CHECKING``, for type checkers
    and the import contract; ``tests/unit/test_import_contract.py`` holds the two in step.

    A name its module shares with the module itself (``builder.agent.install.install``) is
    imported at once: importing the submodule binds the package's attribute to the module, and
    a lazy name would then never be looked up."""
    for name, module in exports.items():
        if module == f"{package}.{name}":
            setattr(sys.modules[package], name, getattr(importlib.import_module(module), name))

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    return __getattr__
