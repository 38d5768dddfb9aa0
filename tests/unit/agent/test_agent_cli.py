"""The agent CLI end to end, in process: install, list, pin, lease, gc, verify."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from agent_factories import make_bundle

from builder.cli.agent import byte_size
from builder.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_install_list_pin_gc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    a = make_bundle(tmp_path / "dist", name="alpha", extra_files=20)
    b = make_bundle(tmp_path / "dist", name="beta", extra_files=20)
    code, out, _ = run(capsys, "agent", "install", str(a.archive), "--store", store)
    assert code == 0 and out.strip() == str(tmp_path / "store" / "entries" / a.sha256)
    code, out, _ = run(capsys, "agent", "install", str(b.archive), "--store", store, "--json")
    assert code == 0 and json.loads(out)["fresh"] is True
    code, out, _ = run(capsys, "agent", "install", str(b.archive), "--store", store, "--json")
    assert json.loads(out)["fresh"] is False

    code, out, err = run(capsys, "agent", "list", "--store", store)
    assert code == 0 and "alpha" in out and "beta" in out and "2 entries" in err
    code, out, _ = run(capsys, "agent", "list", "--store", store, "--json")
    listed = {e["name"]: e for e in json.loads(out)}
    assert listed["alpha"]["pinned"] is False and listed["alpha"]["disk_bytes"] > 0

    assert run(capsys, "agent", "pin", "alpha", "--store", store)[0] == 0
    assert run(capsys, "agent", "lease", "beta", "--store", store, "--pid", str(os.getpid())
               )[0] == 0
    code, out, err = run(capsys, "agent", "gc", "--store", store, "--max-bytes", "0")
    assert code == 3 and "still over budget" in err and "freed 0 B" in out
    assert run(capsys, "agent", "release", "beta", "--store", store, "--pid",
               str(os.getpid()))[0] == 0
    code, out, _ = run(capsys, "agent", "gc", "--store", store, "--max-bytes", "0", "--json")
    report = json.loads(out)
    assert code == 3 and [e["name"] for e in report["evicted"]] == ["beta"]
    assert report["protected"] == [a.sha256]
    assert run(capsys, "agent", "unpin", "alpha", "--store", store)[0] == 0
    code, out, _ = run(capsys, "agent", "gc", "--store", store, "--max-bytes", "1G")
    assert code == 0 and "freed 0 B" in out
    assert run(capsys, "agent", "verify", "alpha", "--store", store)[0] == 0


def test_install_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path / "dist")
    bundle.sidecar.unlink()
    code, out, err = run(capsys, "agent", "install", str(bundle.archive), "--store",
                         str(tmp_path / "s"))
    assert code == 1 and out == ""
    assert err.startswith(f"error: {bundle.archive}: no sha256 to check the archive against\n")
    assert "Traceback" not in err
    code, _, err = run(capsys, "agent", "install", "demo", "--store", str(tmp_path / "s"))
    assert code == 2 and "--index" in err


def test_byte_sizes() -> None:
    assert byte_size("1234") == 1234
    assert byte_size("512M") == 512 << 20
    assert byte_size("1.5GiB") == 3 << 29
    assert byte_size("2k") == 2048
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        byte_size("lots")


# modules a cold install of a local archive has no use for (issue 16.1: the CLI's start-up)
NOT_FOR_A_LOCAL_ARCHIVE = ("builder.agent.oci", "builder.oci.http", "builder.oci.registry",
                           "http.client", "urllib.request", "elftools", "builder.agent.image",
                           "builder.agent.verify")


def test_installing_a_local_archive_loads_no_oci_nor_http_client(tmp_path: Path) -> None:
    """The CLI run as a node runs it (a fresh interpreter): ``agent install ARCHIVE`` installs
    and leaves the OCI client, urllib's HTTP client, the mounted-image path and the ELF reader
    unloaded."""
    bundle = make_bundle(tmp_path / "dist")
    script = ("import json, sys\n"
              "from builder.cli.main import main\n"
              "code = main(sys.argv[1:])\n"
              f"loaded = [m for m in {NOT_FOR_A_LOCAL_ARCHIVE!r} if m in sys.modules]\n"
              "print(json.dumps([code, loaded]))\n")
    done = subprocess.run([sys.executable, "-c", script, "agent", "install",
                           str(bundle.archive), "--store", str(tmp_path / "store")],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and (tmp_path / "store" / "entries" / bundle.sha256).is_dir()
    assert loaded == []
