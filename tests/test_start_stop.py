"""`make run` starts the web server, beat and the workers; Ctrl-C stops every one of them, quickly,
and the next `make run` works."""

import http.client
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.worker, pytest.mark.timeout(600)]

START_WITHIN_S = 180  # the first start loads the demo, which verifies its build
STOP_WITHIN_S = 10
WORKERS = ("control", "io", "predict")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/")
        return connection.getresponse().status in {200, 302}  # the dashboard, or its login page
    except OSError:
        return False


def log_text(log_path: Path) -> str:
    return log_path.read_text(errors="replace")


def everything_started(log: str) -> bool:
    workers_ready = all(re.search(rf"{worker}@\S+ ready\.", log) for worker in WORKERS)
    return workers_ready and "beat: Starting..." in log


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running: a zombie has stopped, only its parent has not collected it yet."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def processes_of(data_dir: Path) -> list[psutil.Process]:
    """Processes of this installation found by what they hold, whatever their parent became."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid():
                continue
            held = [proc.cwd(), *proc.cmdline(), proc.environ().get("MLPLATFORM_DATA_DIR", "")]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if any(str(data_dir) in value for value in held):
            found.append(proc)
    return found


def start_and_stop(env: dict, port: int, log_path: Path, started: list[psutil.Process]) -> float:
    """Start `make run`, wait for the web server and every worker, press Ctrl-C; return the seconds it took."""
    with log_path.open("ab") as log:
        make = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
    started.append(psutil.Process(make.pid))
    offset = log_path.stat().st_size
    deadline = time.monotonic() + START_WITHIN_S
    while not (answers(port) and everything_started(log_text(log_path)[offset:])):
        if make.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"`make run` did not start within {START_WITHIN_S} s:\n{log_text(log_path)[-5000:]}")
        time.sleep(0.5)
    tree = [psutil.Process(make.pid), *psutil.Process(make.pid).children(recursive=True)]
    started.extend(tree)
    assert len(tree) > 10, [p.cmdline() for p in tree]  # make, honcho, web, beat, three workers and their pools

    stopped_at = time.monotonic()
    os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    while (alive := running(tree)) and time.monotonic() < stopped_at + STOP_WITHIN_S:
        time.sleep(0.1)
    took = time.monotonic() - stopped_at
    assert alive == [], f"still running {took:.1f} s after Ctrl-C: {[p.cmdline() for p in alive]}"
    make.wait(timeout=1)
    assert processes_of(Path(env["MLPLATFORM_DATA_DIR"])) == []
    assert not answers(port)
    return took


def test_ctrl_c_stops_every_process_of_make_run_and_it_starts_again(tmp_path):
    data_dir = tmp_path / "data"
    # Its own SQLite database and filesystem broker, even where the suite runs on PostgreSQL and Redis.
    dropped = {"DATABASE_URL", "CELERY_BROKER_URL", "PORT", "HOST", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {name: value for name, value in os.environ.items() if name not in dropped}
    env["MLPLATFORM_DATA_DIR"] = str(data_dir)
    port = free_port()
    log_path = tmp_path / "make-run.log"
    started: list[psutil.Process] = []
    try:
        first = start_and_stop(env, port, log_path, started)
        second = start_and_stop(env, port, log_path, started)
        print(f"Ctrl-C stopped `make run` in {first:.1f} s, then after a restart in {second:.1f} s")
    finally:
        for proc in [*started, *processes_of(data_dir)]:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
