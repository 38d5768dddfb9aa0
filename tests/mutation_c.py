"""Mutants of builder/agent/_batchwrite.c, each compiled over the in-place module; the agent
tests that use the C writer run against it. Prints killed / survived."""
import shutil, subprocess, sys, sysconfig
from pathlib import Path
ROOT = Path("/work/main")
SRC = ROOT / "builder/agent/_batchwrite.c"
SO = next((ROOT / "builder/agent").glob("_batchwrite*.so"))
INC = sysconfig.get_paths()["include"]
MUTANTS = [
    ("no O_EXCL", "O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW", "O_WRONLY | O_CREAT | O_NOFOLLOW"),
    ("no O_NOFOLLOW", "O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC", "O_CREAT | O_EXCL | O_CLOEXEC"),
    ("no O_EXCL nor O_NOFOLLOW", "O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW", "O_WRONLY | O_CREAT"),
    ("open mode 0666", "O_CLOEXEC, item->mode);", "O_CLOEXEC, 0666);"),
    ("no fchmod", "&& fchmod(fd, item->mode) < 0", "&& 0"),
    ("fchmod always skipped by compare", "(int)(st.st_mode & 07777) != item->mode", "0"),
    ("no stamp", "if (futimens(fd, stamp) < 0)", "if (0)"),
    ("stamp 0", "#define STAMP 315532800", "#define STAMP 0"),
    ("no link", "else if (link(item->path, item->object) < 0)", "else if (0)"),
    ("link errno dropped", "item->link_err = errno;", "item->link_err = 0;"),
    ("open errno dropped", "        item->err = errno;\n        return;", "        return;"),
    ("write errors ignored", "            return errno;\n", "            return 0;\n"),
    ("one write only", "        data += done;\n        left -= done;", "        data += done;\n        left = 0;"),
    ("batch goes on after an error", "        if (items[done - 1].err) break;", ""),
    ("bytes = blocks", "(long long)st.st_blocks * 512", "(long long)st.st_blocks"),
    ("no inode", "item->ino = (unsigned long long)st.st_ino;", "item->ino = 0;"),
    ("NUL check gone", "if ((size_t)size != strlen(text)) {", "if (0) {"),
    ("mode range check gone", "if (mode & ~07777) {", "if (0) {"),
    ("object ignored", "if (object != Py_None && !(item->object = c_path(object, \"object\"))) return -1;", ""),
    ("buffers not released", "PyBuffer_Release(&items[i].pieces[j]);", ";"),
    ("lock held", "    Py_BEGIN_ALLOW_THREADS\n", "    {\n"),
    ("pieces not a tuple accepted", "    if (!PyTuple_Check(pieces)) {", "    if (0) {"),
    ("batch not a tuple accepted", "    if (!PyTuple_Check(batch)) {", "    if (!PyTuple_Check(batch) && 0) {"),
]
orig_src, orig_so = SRC.read_text(), SO.read_bytes()
results = []
try:
    for name, old, new in MUTANTS:
        src = orig_src
        if old not in src:
            results.append((name, "NOT APPLIED")); continue
        src = src.replace(old, new, 1)
        if name == "lock held":
            src = src.replace("    Py_END_ALLOW_THREADS\n", "    }\n", 1)
        tmp = Path("/tmp/lead-b/cmut/m.c"); tmp.write_text(src)
        built = subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{INC}", str(tmp), "-o", str(SO)], capture_output=True, text=True)
        if built.returncode:
            results.append((name, "NO BUILD " + built.stderr[:200])); continue
        run = subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                              "tests/unit/agent/test_agent_writer.py", "tests/unit/agent/test_agent_extract.py",
                              "tests/unit/agent/test_agent_hostile.py", "tests/unit/agent/test_agent_objects.py",
                              "-k", "not python"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        results.append((name, "killed" if run.returncode else "SURVIVED"))
        print(name, results[-1][1], flush=True)
finally:
    SO.write_bytes(orig_so)
print()
for name, r in results: print(f"| {name} | {r} |")
