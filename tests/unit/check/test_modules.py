"""Which modules the import check imports: RECORD files in, import roots out."""

from __future__ import annotations

import pytest

from builder.check.model import ImportTarget, SkippedModule
from builder.check.modules import (
    BUILTIN_SKIPS,
    Distribution,
    import_roots,
    record_paths,
    select_imports,
)


def test_record_paths_reads_the_path_column_with_quoted_commas() -> None:
    text = ('pkg/__init__.py,sha256=abc,10\n"pkg/a,b.py",sha256=def,3\n'
            "pkg-1.0.dist-info/RECORD,,\n\n")
    assert record_paths(text) == ("pkg-1.0.dist-info/RECORD", "pkg/__init__.py", "pkg/a,b.py")


@pytest.mark.parametrize(("files", "roots"), [
    # a regular package, its submodules not listed separately
    (["pkg/__init__.py", "pkg/sub/__init__.py", "pkg/mod.py"], ("pkg",)),
    # a single-file module
    (["six.py"], ("six",)),
    # extension modules with an ABI tag; a bare .so beside them is a shared library
    (["_yaml.cpython-311-x86_64-linux-gnu.so", "fast.abi3.so", "libfoo.so",
      "plain.cpython-311.so"], ("fast", "plain")),
    # a namespace directory: its first real modules, not the namespace itself
    (["google/protobuf/__init__.py", "google/protobuf/x.py", "google/api/http.py"],
     ("google.api.http", "google.protobuf")),
    # a namespace two levels deep
    (["a/b/c/__init__.py"], ("a.b.c",)),
    # an extension package (__init__ is an extension module)
    (["ext/__init__.cpython-311-x86_64-linux-gnu.so"], ("ext",)),
    # private roots left out when the distribution has a public one
    (["_cffi_backend.cpython-311-x86_64-linux-gnu.so", "cffi/__init__.py"], ("cffi",)),
    # ... and imported when they are all it has
    (["_argon2_cffi_bindings/__init__.py"], ("_argon2_cffi_bindings",)),
    # metadata, scripts, caches, stubs, non-identifiers and data files are not modules
    (["pkg-1.0.dist-info/METADATA", "../../bin/tool", "__pycache__/six.cpython-311.pyc",
      "pkg-stubs/__init__.pyi", "numpy.libs/libgfortran.so", "my-dir/x.py", "x.pth",
      "pkg-1.0.data/scripts/x.py", "README.txt", "/abs/mod.py", "./dot.py", "a//b.py",
      "share/jupyter/x.json"], ()),
])
def test_import_roots(files: list[str], roots: tuple[str, ...]) -> None:
    assert import_roots(files) == roots


def dist(name: str, *files: str, version: str = "1.0") -> Distribution:
    return Distribution(name=name, version=version, files=files)


def test_modules_are_merged_by_name_with_every_distribution_that_installs_them() -> None:
    selection = select_imports(
        [dist("jupyter-core", "jupyter.py", "jupyter_core/__init__.py", version="5.0"),
         dist("jupyter", "jupyter.py")],
        recipe_skips=())
    assert selection.targets == (
        ImportTarget(module="jupyter", distributions=("jupyter 1.0", "jupyter-core 5.0")),
        ImportTarget(module="jupyter_core", distributions=("jupyter-core 5.0",)),
    )
    assert selection.skipped == () and selection.unused_skips == ()


def test_builtin_skips_have_reasons_and_cover_test_suites() -> None:
    selection = select_imports([dist("bad", "tests/__init__.py", "bad/__init__.py"),
                                dist("matplotlib-inline", "matplotlib_inline/__init__.py")],
                               recipe_skips=())
    assert [t.module for t in selection.targets] == ["bad"]
    assert selection.skipped == (
        SkippedModule(module="matplotlib_inline", distributions=("matplotlib-inline 1.0",),
                      reason=BUILTIN_SKIPS["matplotlib_inline"]),
        SkippedModule(module="tests", distributions=("bad 1.0",), reason=BUILTIN_SKIPS["tests"]),
    )
    assert all(reason for reason in BUILTIN_SKIPS.values())


def test_recipe_skips_cover_submodules_and_unused_ones_are_reported() -> None:
    selection = select_imports(
        [dist("protobuf", "google/protobuf/__init__.py"), dist("tb", "tensorboard/__init__.py"),
         dist("tbx", "tensorboardX/__init__.py")],
        recipe_skips=("google", "tensorboard", "nothing_here", "tensorboard.sub"))
    assert [t.module for t in selection.targets] == ["tensorboardX"]  # a prefix is not a parent
    assert [(s.module, s.reason) for s in selection.skipped] == [
        ("google.protobuf", "checks.import_skip"), ("tensorboard", "checks.import_skip")]
    # a skip below an import root matches nothing: the root (which imports it) is imported
    assert selection.unused_skips == ("nothing_here", "tensorboard.sub")


def test_a_recipe_skip_of_a_builtin_name_counts_as_used() -> None:
    selection = select_imports([dist("x", "tests/__init__.py")], recipe_skips=("tests",))
    assert selection.unused_skips == ()
    assert selection.skipped[0].reason == "checks.import_skip"
