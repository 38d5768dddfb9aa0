"""builder.cpython: turn an installed CPython into a python-build-standalone style archive."""

from builder.cpython.importer import ImportedRuntime, import_runtime

__all__ = ["ImportedRuntime", "import_runtime"]
