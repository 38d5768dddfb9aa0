"""Hand-made mutants of the C batch writer (mutmut mutates Python only).

    .venv/bin/python tests/mutation_c.py

Each mutant of ``builder/agent/_batchwrite.c`` is compiled over the module the editable install
built in place, and the agent tests that use the C writer run against it (``-x``: the first
failure kills it). The original module is put back at the end, whatever happens. Prints a row
per mutant: killed, SURVIVED, or why it was not run.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "builder" / "agent" / "_batchwrite.c"
TESTS = ["tests/unit/agent/test_agent_writer.py", "tests/unit/agent/test_agent_extract.py",
         "tests/unit/agent/test_agent_hostile.py", "tests/unit/agent/test_agent_objects.py"]

# (name, text of the original, its replacement); "lock held" also drops the matching END
MUTANTS = [
    ("no O_EXCL", "O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW", "O_WRONLY | O_CREAT | O_NOFOLLOW"),
    ("no O_NOFOLLOW", "O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC", "O_CREAT | O_EXCL | O_CLOEXEC"),
    ("no O_EXCL nor O_NOFOLLOW", "O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW", "O_WRONLY | O_CREAT"),
    ("open mode 0666", "O_CLOEXEC, item->mode);", "O_CLOEXEC, 0666);"),
    ("no fchmod", "&& fchmod(fd, item->mode) < 0", "&& 0"),
    ("mode never compared", "(int)(st.st_mode & 07777) != item->mode", "0"),
    ("no stamp", "if (futimens(fd, stamp) < 0)", "if (0)"),
    ("stamp 0", "#define STAMP 315532800", "#define STAMP 0"),
    ("no link", "else if (link(item->path, item->object) < 0)", "else if (0)"),
    ("link errno dropped", "item->link_err = errno;", "item->link_err = 0;"),
    ("open errno dropped", "        item->err = errno;\n        return;", "        return;"),
    ("write errors ignored", "            return errno;\n", "            return 0;\n"),
    ("one write only", "        data += done;\n        left -= done;",
     "        data += done;\n        left = 0;"),
    ("batch goes on after an error", "        if (items[done - 1].err) break;", ""),
    ("bytes = blocks", "(long long)st.st_blocks * 512", "(long long)st.st_blocks"),
    ("no inode", "item->ino = (unsigned long long)st.st_ino;", "item->ino = 0;"),
    ("NUL check gone", "if ((size_t)size != strlen(text)) {", "if (0) {"),
    ("mode range check gone", "if (mode & ~07777) {", "if (0) {"),
    ("object ignored",
     'if (object != Py_None && !(item->object = c_path(object, "object"))) return -1;', ""),
    ("buffers not released", "PyBuffer_Release(&items[i].pieces[j]);", ";"),
    ("lock held", "    Py_BEGIN_ALLOW_THREADS\n", "    {\n"),
    ("pieces not a tuple accepted", "    if (!PyTuple_Check(pieces)) {", "    if (0) {"),
    ("batch not a tuple accepted", "    if (!PyTuple_Check(batch)) {",
     "    if (!PyTuple_Check(batch) && 0) {"),
]


def main() -> int:
    built = sorted((ROOT / "builder" / "agent").glob("_batchwrite*.so"))
    if not built:
        print("builder/agent/_batchwrite*.so is missing: install builder first (./dev)")
        return 1
    module, original_source = built[0], SRC.read_text()
    original = module.read_bytes()
    include = sysconfig.get_paths()["include"]
    survived = 0
    try:
        with tempfile.TemporaryDirectory(prefix="mutation-c-") as tmp:
            for name, old, new in MUTANTS:
                if old not in original_source:
                    print(f"| {name} | not applied: the source changed |")
                    survived += 1
                    continue
                source = original_source.replace(old, new, 1)
                if name == "lock held":
                    source = source.replace("    Py_END_ALLOW_THREADS\n", "    }\n", 1)
                mutant = Path(tmp) / "mutant.c"
                mutant.write_text(source)
                done = subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{include}", str(mutant),
                                       "-o", str(module)], capture_output=True, text=True,
                                      check=False)
                if done.returncode:
                    print(f"| {name} | does not compile |")
                    continue
                run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                      "no:cacheprovider", *TESTS, "-k", "not python"], cwd=ROOT,
                                     capture_output=True, text=True, check=False, timeout=900)
                killed = run.returncode != 0
                survived += not killed
                print(f"| {name} | {'killed' if killed else 'SURVIVED'} |", flush=True)
    finally:
        module.write_bytes(original)
    print(f"{len(MUTANTS) - survived} / {len(MUTANTS)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
