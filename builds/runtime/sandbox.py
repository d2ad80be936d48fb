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

import contextlib
import functools
import logging
import os
import select
import shutil
import stat
import subprocess
import sys
import time
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


def as_root() -> bool:
    """Whether this worker runs as root: then the model is switched to nobody inside the sandbox
    (see user_namespace), since the kernel exempts root's processes from the process limit."""
    return os.geteuid() == 0


def user_namespace() -> int:
    """A new user namespace in which root is root and nobody is nobody (an open descriptor of it,
    for bwrap --userns; the caller closes it). A root worker's models run in one: bubblewrap
    sets the sandbox up as root there, and the model process then switches to nobody for good, so
    its processes count against its own process limit. (With bwrap's own --unshare-user, nobody
    inside would be root outside, and root is exempt from that limit.) No further user namespace
    can be made inside it (its max_user_namespaces is 0), as bwrap's --disable-userns does for a
    sandbox of its own: a model gets no namespace root, and none of the kernel surface that opens.
    About 5 ms."""
    own = os.readlink("/proc/self/ns/user")
    # The shell waits until its namespace is mapped, then execs (which gives it the namespace's
    # capabilities, as root there) to set the limit: "ready" says it is set.
    holder = subprocess.Popen(  # noqa: S607 - unshare from the system's PATH
        ["unshare", "--user", "sh", "-c", f"read go && exec sh -c '{_NO_NESTED_NAMESPACES}'"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/user") != own:
                    break
            except OSError:
                pass
            if holder.poll() is not None or time.monotonic() > deadline:
                raise SandboxUnavailable("could not make a user namespace for the model (unshare --user failed)")
            time.sleep(0.0005)
        mapping = f"0 0 1\n{NOBODY} {NOBODY} 1\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w") as handle:
                handle.write(mapping)
        try:
            holder.stdin.write(b"go\n")
            holder.stdin.flush()
            ready, _, _ = select.select([holder.stdout], [], [], max(0.0, deadline - time.monotonic()))
            answer = holder.stdout.readline() if ready else b""
        except OSError:  # it died before reading "go"
            answer = b""
        if answer != b"ready\n":
            holder.kill()
            said = holder.stderr.read().decode(errors="replace").strip()[-200:]
            raise SandboxUnavailable(f"could not stop further user namespaces in the model's ({said or 'no answer'})")
        return os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        holder.kill()
        holder.wait()
        for stream in (holder.stdin, holder.stdout, holder.stderr):
            with contextlib.suppress(OSError):  # stdin may hold "go" for a holder that is gone
                stream.close()


_NO_NESTED_NAMESPACES = "echo 0 > /proc/sys/user/max_user_namespaces && echo ready && exec sleep 60"


@functools.cache
def disables_userns(bwrap: str) -> bool:
    """Whether this bubblewrap has --disable-userns (0.8 and later); said once when it has not."""
    try:
        done = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10, check=False)
        has = "--disable-userns" in done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired):
        has = False
    if not has:
        logger.warning(
            "bubblewrap here has no --disable-userns (it came in 0.8): an unprivileged worker's models can "
            "make user namespaces of their own; install bubblewrap 0.8 or later"
        )
    return has


def _runtime_dirs() -> list[str]:
    """The Python runtime's folders (its prefixes and the folder of the executable)."""
    return sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))})


def unreadable_runtime() -> str:
    """Why nobody cannot run the Python runtime or the platform's model runtime ("" when it can):
    a root worker's models run as nobody. The folders above them do not matter (the sandbox shows
    these folders on their own), but these folders and their files must be readable by others."""
    if not as_root():
        return ""  # nobody in the sandbox is this worker's own user outside it
    paths = [*_runtime_dirs(), os.path.realpath(sys.executable)]
    paths += [p for p in sys.path if p and os.path.isdir(p)]
    paths += [str(REPO_ROOT / relative) for relative in PLATFORM_FILES]
    for path in paths:
        mode = os.stat(path).st_mode
        need = 0o005 if stat.S_ISDIR(mode) or path == os.path.realpath(sys.executable) else 0o004
        if mode & need != need:
            return (
                f"{path} is not readable by other users (mode {stat.S_IMODE(mode):04o}), and a root worker's "
                "models run as nobody: make the Python runtime and the platform readable by others "
                f"(chmod -R o+rX {path}), or run workers as an unprivileged user"
            )
    return ""


@functools.cache
def bwrap_refusal(bwrap: str) -> str:
    """Why bubblewrap cannot make a sandbox on this machine ("" when it can): some systems forbid
    the unprivileged user namespaces it needs, and a root worker's models need a runtime nobody can
    read. Tried once per process (about 10 ms), with the very arguments a model process gets."""
    unreadable = unreadable_runtime()
    if unreadable:
        return unreadable
    launch = None
    try:
        launch = Sandbox(bwrap=bwrap).launch(["true"], read_only=[], writable=[], chdir=Path("/"))
        done = subprocess.run(
            launch.argv, capture_output=True, text=True, timeout=30, check=False, pass_fds=launch.pass_fds
        )
    except (OSError, subprocess.TimeoutExpired, SandboxUnavailable) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        if launch is not None:
            launch.close()
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit code {done.returncode}")[:300]


# The namespaces a sandbox gets besides the user's (which depends on who runs the worker).
UNSHARE = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try")


@dataclass(frozen=True)
class Launch:
    """A command wrapped in bubblewrap, the descriptors it needs, and whether the model switches
    to nobody itself (a root worker's; see user_namespace)."""

    argv: list[str]
    pass_fds: tuple[int, ...]
    drop_to: int | None

    def close(self) -> None:
        """Close this side's descriptors (after the process started, or when it could not)."""
        for fd in self.pass_fds:
            os.close(fd)


@dataclass(frozen=True)
class Sandbox:
    """How to start one model process in bubblewrap."""

    bwrap: str
    allow_network: bool = False
    tmp_mb: int = 1024  # its private /tmp (memory-backed, so capped)

    def launch(self, command: list[str], *, read_only: list[Path], writable: list[Path], chdir: Path) -> Launch:
        """`command` in a sandbox that shows the system, the Python runtime and the platform's model
        runtime read-only, `read_only` and `writable` (the model process's own folders and files)
        and a private /tmp, and nothing else."""
        userns = user_namespace() if as_root() else None
        try:
            args = [self.bwrap, "--die-with-parent", "--new-session"]
            if userns is None:
                args += ["--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY)]
                if disables_userns(self.bwrap):  # no further user namespace inside (see user_namespace);
                    args += ["--unshare-user", "--disable-userns"]  # --unshare-all's "try" is not enough
            else:
                args += ["--userns", str(userns), *UNSHARE]
            if self.allow_network:
                args += ["--share-net"]
            # The private mounts first: a folder bound below may lie under /tmp (a data dir there).
            args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(self.tmp_mb << 20)]
            args += ["--tmpfs", "/tmp"]
            for folder in SYSTEM_DIRS:
                if os.path.islink(folder):
                    args += ["--symlink", os.readlink(folder), folder]
                elif os.path.isdir(folder):
                    args += ["--ro-bind", folder, folder]
            # /etc itself readable by nobody (bwrap would make it 0700 for a root worker's model, and
            # then neither host names nor TLS certificates could be looked up).
            args += ["--perms", "0755", "--dir", "/etc"]
            for path in ETC_FILES:
                args += ["--ro-bind-try", path, path]
            binds = [(p, "--ro-bind") for p in _runtime_dirs() if not p.startswith(SYSTEM_DIRS)]
            binds += [(str(REPO_ROOT / relative), "--ro-bind") for relative in PLATFORM_FILES]
            binds += [(str(p), "--ro-bind") for p in read_only] + [(str(p), "--bind") for p in writable]
            made: set[str] = {"/", "/tmp", "/etc", *SYSTEM_DIRS}
            for path, how in binds:
                # The folders above a bound path, readable by nobody (bwrap would make them 0700).
                for parent in reversed(Path(path).parents):
                    if str(parent) not in made:
                        made.add(str(parent))
                        args += ["--perms", "0755", "--dir", str(parent)]
                made.add(path)
                args += [how, path, path]
            args += ["--chdir", str(chdir)]
        except BaseException:
            if userns is not None:
                os.close(userns)
            raise
        fds = () if userns is None else (userns,)
        return Launch(argv=[*args, "--", *command], pass_fds=fds, drop_to=None if userns is None else NOBODY)


def sandbox_for(mode: str, *, allow_network: bool = False, tmp_mb: int = 1024) -> Sandbox | None:
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
                f"MODEL_SANDBOX is required but bubblewrap cannot make a sandbox here ({refusal}); "
                "if it names user namespaces, this system may forbid unprivileged ones "
                "(e.g. kernel.unprivileged_userns_clone=0 or an AppArmor rule)"
            )
        logger.warning("bubblewrap cannot make a sandbox here (%s): model code runs without one", refusal)
        return None
    return Sandbox(bwrap=found, allow_network=allow_network, tmp_mb=tmp_mb)


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
    mode = os.stat(target).st_mode
    if mode & 0o004 == 0:  # a root worker's model runs as nobody: it must be able to read its build
        os.chmod(target, stat.S_IMODE(mode) | 0o044)
