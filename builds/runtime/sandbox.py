"""The sandbox a model process runs in: bubblewrap (`bwrap`, what Flatpak uses; unprivileged user
namespaces, no daemon).

Inside, the model sees only what it needs: the system's programs and libraries and the Python
runtime (read-only), the platform's child runtime and SDK (read-only), its build (read-only), its
own work folder (the batch's input and output files live there) and a private /tmp. No data dir,
secret key, database file, other build, lake or staging folder, home folder, or other process's
/proc. It runs as nobody in its own user, PID, IPC, UTS and network namespaces (no network unless
its batch config allows it), and dies with its worker.

Plain Python: no Django. `MODEL_SANDBOX` (auto | required | off) is read by the caller.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MODES = ("auto", "required", "off")
NOBODY = 65534
REPO_ROOT = Path(__file__).resolve().parents[2]
# What the child runtime imports from the platform (builds/runtime/child.py runs as a script).
PLATFORM_FILES = ("builds/runtime/child.py", "mlplatform/__init__.py", "mlplatform/sdk")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Of /etc, only what programs need to start and, with network access, to resolve and verify hosts.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
)


class SandboxUnavailable(RuntimeError):
    """MODEL_SANDBOX=required and bubblewrap cannot be used here."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def bwrap_refusal(bwrap: str) -> str:
    """Why bubblewrap cannot make a sandbox on this machine ("" when it can): some systems forbid
    the unprivileged user namespaces it needs. Tried once per process (about 10 ms)."""
    try:
        done = subprocess.run(
            [bwrap, "--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY), "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit code {done.returncode}")[:300]


@dataclass(frozen=True)
class Sandbox:
    """How to start one model process in bubblewrap."""

    bwrap: str
    allow_network: bool = False

    def argv(self, command: list[str], *, workdir: Path, build_dir: Path) -> list[str]:
        """`command` wrapped: the folders the model may see, and nothing else."""
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
        args += ["--uid", str(NOBODY), "--gid", str(NOBODY)]
        if self.allow_network:
            args += ["--share-net"]
        # The private mounts first: a folder bound below may lie under /tmp (a data dir there).
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for folder in SYSTEM_DIRS:
            if os.path.islink(folder):
                args += ["--symlink", os.readlink(folder), folder]
            elif os.path.isdir(folder):
                args += ["--ro-bind", folder, folder]
        for path in ETC_FILES:
            args += ["--ro-bind-try", path, path]
        for prefix in sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}):
            if not prefix.startswith(SYSTEM_DIRS):
                args += ["--ro-bind", prefix, prefix]
        for relative in PLATFORM_FILES:
            path = str(REPO_ROOT / relative)
            args += ["--ro-bind", path, path]
        args += ["--bind", str(workdir), str(workdir), "--ro-bind", str(build_dir), str(build_dir)]
        args += ["--chdir", str(workdir)]
        return [*args, "--", *command]


def sandbox_for(mode: str, *, allow_network: bool = False) -> Sandbox | None:
    """The sandbox model processes get under `mode`; None when they run without one (off, or
    auto without bubblewrap). SandboxUnavailable when it is required and missing."""
    if mode not in MODES:
        raise ValueError(f"MODEL_SANDBOX must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return None
    found = bwrap_path()
    if found is None:
        if mode == "required":
            raise SandboxUnavailable(
                "MODEL_SANDBOX is required but bubblewrap is not installed here: install the bubblewrap "
                "package (it provides bwrap), or set MODEL_SANDBOX=auto to run models without a sandbox"
            )
        return None
    refusal = bwrap_refusal(found)
    if refusal:
        if mode == "required":
            raise SandboxUnavailable(
                f"MODEL_SANDBOX is required but bubblewrap cannot make a sandbox here ({refusal}): this "
                "system may forbid unprivileged user namespaces (e.g. kernel.unprivileged_userns_clone=0 or "
                "an AppArmor rule)"
            )
        logger.warning("bubblewrap cannot make a sandbox here (%s): model code runs without one", refusal)
        return None
    return Sandbox(bwrap=found, allow_network=allow_network)


def provide_build(source: Path, slot: Path) -> Path:
    """Put a build's unpacked artifact (a folder or a file) into a model process's build folder
    (which the sandbox shows read-only): hard links where the disk allows, copies otherwise.
    Returns its path there."""
    target = slot / source.name
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy, dirs_exist_ok=True)
    else:
        _link_or_copy(str(source), str(target))
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
