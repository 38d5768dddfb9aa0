"""node-env.js, the preload of a bundle's Node.js apps, run by the host's node (no server)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from builder.launch import node_env_source

NODE = shutil.which("node")

# what a forked node sees: its own starting environment (/proc) and its process.env
CHILD = """
const start = require("fs").readFileSync("/proc/self/environ", "utf8").split("\\0");
process.send({start: start.filter((e) => /^(LD_|BUILDER_)/.test(e)).sort(),
              env: process.env.LD_LIBRARY_PATH === undefined ? null : process.env.LD_LIBRARY_PATH},
             () => process.exit(0));
"""
PARENT = """
const cp = require("child_process");
const out = {env: process.env.LD_LIBRARY_PATH, preload: process.env.LD_PRELOAD,
             saved: Object.keys(process.env).filter((k) => k.startsWith("BUILDER_")),
             shell: cp.execFileSync("/bin/sh", ["-c", "echo \\"$LD_LIBRARY_PATH\\""])
               .toString().trim()};
const results = [];
for (const options of [{}, {execArgv: []}]) {
  const child = cp.fork(process.argv[2], [], options);
  child.on("message", (m) => {
    results.push(m);
    if (results.length === 2) { out.children = results; console.log(JSON.stringify(out)); }
  });
  child.on("exit", () => child.disconnect && child.connected && child.disconnect());
}
"""


@pytest.mark.skipif(NODE is None, reason="no node on this host")
def test_the_loader_variables_come_back_for_programs_but_not_for_forked_nodes(
        tmp_path: Path) -> None:
    preload = tmp_path / "node-env.js"
    preload.write_bytes(node_env_source())
    (tmp_path / "child.js").write_text(CHILD)
    (tmp_path / "parent.js").write_text(PARENT)
    env = {"PATH": "/usr/bin:/bin", "BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH": "/cuda/lib",
           "BUILDER_LAUNCH_SAVED_LD_PRELOAD": ""}
    proc = subprocess.Popen([str(NODE), "--require", str(preload), str(tmp_path / "parent.js"),
                             str(tmp_path / "child.js")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    finally:  # the children too, whatever happened
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    out = json.loads(stdout)
    assert (out["env"], out["preload"], out["saved"]) == ("/cuda/lib", "", [])
    assert out["shell"] == "/cuda/lib", "a terminal or task gets the image's value"
    for child in out["children"]:  # loaded clean (even with execArgv: []), then restored
        assert child == {"start": ["BUILDER_LAUNCH_SAVED_LD_LIBRARY_PATH=/cuda/lib",
                                   "BUILDER_LAUNCH_SAVED_LD_PRELOAD="],
                         "env": "/cuda/lib"}
