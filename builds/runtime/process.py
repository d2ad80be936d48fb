"""The parent side of the model process: start it clean, send requests, capture its output.

A crash, a hang, a memory error or a sys.exit in model code ends up as a ModelProcessError with a
sentence saying what happened and the output the model printed; the caller (a worker) lives on.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from builds.runtime.child import END_OF_REQUEST
from builds.runtime.sandbox import NOBODY, Sandbox, as_root, provide_build

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child.py")
TRUNCATED = "\n[truncated: {dropped:,} more bytes of output were not kept]\n"

ENV_NAME = re.compile(r"^[A-Z_]+$")
FORBIDDEN_ENV = ("PATH", "HOME")
FORBIDDEN_ENV_PREFIXES = ("LD_", "PYTHON")
# Not secrets, and numerical libraries misbehave on some CPUs without them: pass them through.
PASS_THROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TZ")


PR_SET_DUMPABLE, PR_GET_DUMPABLE = 4, 3
GUARD_INTERVAL_S = 0.5  # how often the worker adds up a working model's processes (see over_limits)


def _cpu_parts(process: psutil.Process) -> tuple[float, float]:
    """Its own CPU time, and that of its children that ended (which the kernel's limit ignores)."""
    try:
        times = process.cpu_times()
    except psutil.Error:  # it has just ended
        return 0.0, 0.0
    return times.user + times.system, times.children_user + times.children_system


def _cpu(process: psutil.Process) -> float:
    return sum(_cpu_parts(process))


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


def _pss(process: psutil.Process) -> int:
    try:
        return process.memory_full_info().pss
    except psutil.Error:
        return 0


def _prctl(option: int, value: int = 0) -> int:
    libc = ctypes.CDLL(None, use_errno=True)  # the loaded C library: find_library would run ldconfig
    return libc.prctl(option, value, 0, 0, 0)


def protect_this_process() -> None:
    """Make this process's /proc files (its environment: database URL, keys) unreadable to the
    model processes it starts, which run as the same user. Root's children can still read them:
    run workers as an unprivileged user."""
    if _prctl(PR_GET_DUMPABLE) != 0:
        _prctl(PR_SET_DUMPABLE, 0)


def env_name_error(name: str) -> str | None:
    """Why ``name`` cannot be a model environment variable, or None if it can."""
    if not ENV_NAME.match(name):
        return f"{name!r} is not allowed: names use only capital letters A-Z and underscores"
    if name in FORBIDDEN_ENV or name.startswith(FORBIDDEN_ENV_PREFIXES):
        return f"{name!r} is reserved by the platform (PATH, HOME, LD_* and PYTHON* cannot be set)"
    return None


def child_environment(config_env: dict[str, str], home: Path) -> dict[str, str]:
    """The model's whole environment: nothing of the platform's (no database URL, no keys)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    env.update({k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ})
    for name, value in config_env.items():
        if env_name_error(name) is None:
            env[name] = str(value)
    return env


class ModelProcessError(Exception):
    """The request failed; ``log`` holds what the model printed, ``traceback`` its traceback."""

    def __init__(self, message: str, *, log: str = "", traceback: str = "", exit_signal: int | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.traceback = traceback
        self.exit_signal = exit_signal  # the signal the model process died from, if it died from one


@dataclass
class Reply:
    result: dict
    log: str


class _OutputCapture(threading.Thread):
    """Reads the model's stdout+stderr, keeps at most ``cap`` bytes per request, drops the rest."""

    def __init__(self, fd: int, cap: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.cap = fd, cap
        self.segments: queue.Queue[str] = queue.Queue()
        self._kept = bytearray()
        self._dropped = 0

    def _append(self, data: bytes) -> None:
        room = self.cap - len(self._kept)
        self._kept += data[: max(room, 0)]
        self._dropped += max(len(data) - max(room, 0), 0)

    def _finish(self) -> None:
        text = self._kept.decode("utf-8", errors="replace")
        if self._dropped:
            text += TRUNCATED.format(dropped=self._dropped)
        self.segments.put(text)
        self._kept, self._dropped = bytearray(), 0

    def run(self) -> None:
        pending = b""
        keep = len(END_OF_REQUEST) - 1
        while chunk := os.read(self.fd, 1 << 16):
            pending += chunk
            while (at := pending.find(END_OF_REQUEST)) >= 0:
                self._append(pending[:at])
                self._finish()
                pending = pending[at + len(END_OF_REQUEST) :]
            if len(pending) > keep:
                self._append(pending[:-keep])
                pending = pending[-keep:]
        self._append(pending)
        self._finish()
        os.close(self.fd)


def describe_exit(returncode: int | None, limits: Limits | None = None) -> str:
    if returncode is None:
        return "the model process stopped answering"
    if returncode < 0:
        sig = signal.Signals(-returncode)
        if sig == signal.SIGKILL:
            return (
                "the model process was killed (SIGKILL) from outside it: by the system's out-of-memory killer "
                "(the machine ran short of memory) or by an operator"
            )
        if sig == signal.SIGXCPU:
            budget = f" ({limits.cpu_seconds:,} CPU seconds)" if limits and limits.cpu_seconds else ""
            return f"the model process used up its CPU time{budget} and was stopped (SIGXCPU)"
        return f"the model process died from signal {sig.name}"
    return f"the model process exited with code {returncode}"


@dataclass(frozen=True)
class Limits:
    """Limits a model process cannot lift, besides memory (0: none): its processes and threads,
    the largest file it may write, and its CPU time."""

    processes: int = 0
    file_mb: int = 0
    cpu_seconds: int = 0

    def args(self) -> list[str]:
        return [
            "--max-processes", str(self.processes), "--max-file-mb", str(self.file_mb),
            "--cpu-seconds", str(self.cpu_seconds),
        ]  # fmt: skip


class ModelProcess:
    """One child process holding one loaded model; reuse it for many requests.

    Each process has a folder of its own in `workdir`: `build/` (its build, read-only to it), `in/`
    (the files the worker hands it, read-only to it), `output` (the one file it writes) and, when
    it runs without a sandbox, `home/` (its HOME; in the sandbox that is its private /tmp).
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        workdir: Path,
        memory_mb: int = 0,
        log_cap: int = 1 << 20,
        preimport: bool = False,
        sandbox: Sandbox | None = None,
        limits: Limits = Limits(),  # noqa: B008 - frozen
    ) -> None:
        self.preimport = preimport  # a spare: imports the common libraries before it knows its model
        self.sandbox = sandbox
        self.limits = limits
        self.workdir = Path(workdir)
        self.config_env = env
        self.memory_mb = memory_mb
        self.log_cap = log_cap
        self.folder: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def build_dir(self) -> Path:
        return self.folder / "build"

    @property
    def input_dir(self) -> Path:
        return self.folder / "in"

    @property
    def output_path(self) -> Path:
        """The one file the model process may write (its predictions); emptied by new_output()."""
        return self.folder / "output"

    @property
    def home(self) -> Path:
        return Path("/tmp") if self.sandbox is not None else self.folder / "home"  # noqa: S108 - its own tmpfs

    def hand_over(self, path: Path) -> str:
        """A file the worker wrote into input_dir, made readable to the model process."""
        os.chmod(path, 0o644)
        return str(path)

    def new_output(self) -> str:
        """The output file, emptied (nothing of an earlier request can be read back as this one's)."""
        os.truncate(self.output_path, 0)
        return str(self.output_path)

    def _make_folder(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="process-", dir=self.workdir))
        for folder in (self.folder, self.build_dir, self.input_dir):
            folder.mkdir(exist_ok=True)
            os.chmod(folder, 0o755)  # noqa: S103 - a root worker's model runs as nobody and reads them
        self.output_path.touch(mode=0o644)
        if self.sandbox is None:
            self.home.mkdir(mode=0o700)
        elif as_root():  # the model runs as nobody (see sandbox.user_namespace)
            os.chown(self.output_path, NOBODY, NOBODY)

    def start(self) -> ModelProcess:
        protect_this_process()
        self._make_folder()
        self.env = child_environment(self.config_env, self.home)
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        args = [sys.executable, "-I", "-u", str(CHILD), "--root", str(REPO_ROOT)]
        args += ["--cmd-fd", str(cmd_r), "--res-fd", str(res_w), "--memory-mb", str(self.memory_mb)]
        args += self.limits.args()
        args += ["--preimport"] if self.preimport else []
        launch = None
        try:
            if self.sandbox is not None:
                launch = self.sandbox.launch(
                    args,
                    read_only=[self.build_dir, self.input_dir],
                    writable=[self.output_path],
                    chdir=self.home,
                )
                args = launch.argv + (["--drop-to", str(launch.drop_to)] if launch.drop_to is not None else [])
            self.proc = subprocess.Popen(
                args,
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=(cmd_r, res_w, *(launch.pass_fds if launch else ())),
                start_new_session=True,  # so a kill takes the model's own children too
            )
        except BaseException:  # no sandbox or no process: nothing of this start is left behind
            for fd in (cmd_w, res_r, out_r):
                os.close(fd)
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        finally:
            if launch is not None:
                launch.close()
            for fd in (cmd_r, res_w, out_w):
                os.close(fd)
        self._commands = os.fdopen(cmd_w, "wb", buffering=0)
        self._results = res_r
        self._pending = b""
        self._capture = _OutputCapture(out_r, self.log_cap)
        self._capture.start()
        return self

    def _processes(self) -> list[psutil.Process]:
        """The model process and every process below it. In a sandbox, everything below the
        bubblewrap process we started, its init in the model's PID namespace too (orphans end
        there): chosen by place in the tree, never by name, which model code can set."""
        try:
            root = psutil.Process(self.proc.pid)
            below = root.children(recursive=True)
        except (psutil.Error, AttributeError):
            return []
        return below if self.sandbox is not None else [root, *below]

    def cpu_seconds(self) -> float:
        """The CPU time the model process and the processes it started have used together."""
        return sum(_cpu(p) for p in self._processes())

    def over_limits(self) -> str:
        """Why the model's processes together are past its limits ("" when they are not).

        The kernel's limits count each process on its own, and not the time of children that
        ended: a model could start children that each use nearly all its memory or CPU time. The
        worker adds them up: their memory (PSS, so pages they share count once) against the
        model's memory, their CPU time (ended children's too) against its CPU time."""
        processes = self._processes()
        alone = len(processes) <= (1 if self.sandbox is None else 2)  # the model process (and bwrap's init)
        if self.memory_mb and not alone:
            # RSS first (cheap); PSS (which reads every mapping) only when RSS says it may be over.
            if sum(_rss(p) for p in processes) >> 20 > self.memory_mb:
                used = sum(_pss(p) for p in processes) >> 20
                if used > self.memory_mb:
                    return (
                        f"the model's {len(processes)} processes used {used:,} MiB of memory together, more than "
                        f"its {self.memory_mb:,} MiB (the instance type's memory is the limit for all of them): "
                        "it was stopped"
                    )
        if self.limits.cpu_seconds:
            times = [_cpu_parts(p) for p in processes]
            ended = sum(t[1] for t in times)
            if alone and not ended:  # one process: the kernel's CPU limit is the whole story
                return ""
            used = sum(t[0] + t[1] for t in times)
            if used > self.limits.cpu_seconds:
                return (
                    f"the model's processes used {used:,.0f} CPU seconds together, more than its "
                    f"{self.limits.cpu_seconds:,} (its CPU time counts all of them, and those that ended): "
                    "it was stopped"
                )
        return ""

    def describe_exit(self, code: int | None) -> str:
        """`code`: its exit code (see exit_code)."""
        return describe_exit(code, self.limits)

    def exit_code(self, returncode: int | None) -> int | None:
        """The model process's exit: bubblewrap exits with 128 + N when its process dies from signal N."""
        if self.sandbox is not None and returncode is not None and returncode > 128:
            return -(returncode - 128)
        return returncode

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read_reply(self, deadline: float, on_wait, wait_interval: float) -> bytes | None:
        next_tick = time.monotonic() + wait_interval
        next_guard = time.monotonic() + GUARD_INTERVAL_S
        while b"\n" not in self._pending:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError
            if on_wait is not None and now >= next_tick:
                on_wait()  # may raise to stop the request (the job was cancelled)
                next_tick = now + wait_interval
            if now >= next_guard:
                self._guard()
                next_guard = now + GUARD_INTERVAL_S
            wait = max(0.0, min(deadline, next_tick, next_guard) - now)
            ready, _, _ = select.select([self._results], [], [], wait)
            if ready:
                chunk = os.read(self._results, 1 << 16)
                if not chunk:
                    return None
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _take_log(self, wait: float) -> str:
        try:
            return self._capture.segments.get(timeout=wait)
        except queue.Empty:
            return ""

    def call(self, message: dict, *, timeout: float, on_wait=None, wait_interval: float = 15.0) -> Reply:
        """Send one request; raise ModelProcessError on a model error, a timeout or a death.

        ``on_wait`` is called every ``wait_interval`` seconds while the model works (a heartbeat);
        if it raises, the model process is killed and the exception goes on to the caller.
        """
        if not self.alive:
            raise ModelProcessError(self.describe_exit(self.exit_code(self.proc.returncode) if self.proc else None))
        self._guard()  # processes it left running since its last request count too
        try:
            self._commands.write(json.dumps(message).encode() + b"\n")
            line = self._read_reply(time.monotonic() + timeout, on_wait, wait_interval)
        except TimeoutError:
            self.kill()
            raise ModelProcessError(
                f"the model did not answer within {timeout:g} s and was stopped", log=self._take_log(5)
            ) from None
        except BrokenPipeError:
            line = None
        except BaseException:
            self.kill()
            raise
        if line is None:
            code = self.exit_code(self.proc.wait(timeout=30))
            died_from = -code if code is not None and code < 0 else None
            raise ModelProcessError(self.describe_exit(code), log=self._take_log(5), exit_signal=died_from)
        log = self._take_log(30)
        try:
            reply = json.loads(line)
            ok, error, trace = reply.get("ok"), str(reply.get("error", "")), str(reply.get("traceback", ""))
        except (ValueError, AttributeError):  # model code wrote to the result pipe itself
            self.kill()
            raise ModelProcessError("the model process sent a malformed reply", log=log) from None
        if not ok:
            raise ModelProcessError(error or "the model process reported an unnamed error", log=log, traceback=trace)
        return Reply(result=reply, log=log)

    def _guard(self) -> None:
        """Stop the model when its processes together are past its limits (see over_limits)."""
        reason = self.over_limits()
        if reason:
            self.kill()
            raise ModelProcessError(reason, log=self._take_log(5))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def close(self) -> None:
        """Ask the child to exit (end of its command stream), then make sure it has."""
        if self.proc is None:
            return
        try:
            self._commands.close()
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.kill()
        os.close(self._results)
        self._capture.join(timeout=5)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def provide_build(self, source: Path) -> Path:
        """Where this process finds a build's unpacked artifact (`source`): in its build folder
        when it is sandboxed (nothing else of the cache is visible there), else `source` itself."""
        if self.sandbox is None:
            return source
        return provide_build(source, self.build_dir)

    def __enter__(self) -> ModelProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.close()
