"""A real Celery worker for batch jobs: every queue (control + instance types), beat (the reaper),
and short leases and timeouts so fault tests end in seconds."""

import io
import json
import os
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from tests.conftest import REPO, database_url

# What the job worker runs with; tests that depend on a value read it from here.
JOB_WORKER_SETTINGS = {
    "BATCH_LEASE_S": 4,
    "REAPER_INTERVAL_S": 1,
    "PREDICT_TIMEOUT_S": 6,
    "MAX_BATCH_ATTEMPTS": 3,
}


class JobWorker:
    """The worker process, its log, and the catalogs it reads and writes tables in."""

    def __init__(self, proc: subprocess.Popen, log_path, catalogs: dict[str, str]) -> None:
        self.proc, self.log_path, self.catalogs = proc, log_path, catalogs

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self):
        return self.proc.poll()

    def log(self, since: int = 0) -> str:
        with self.log_path.open("rb") as handle:
            handle.seek(since)
            return handle.read().decode("utf-8", errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size


# Module scope, not session: a worker left running would take the control-queue tasks of later
# tests (a job triggered through a live server) and run them with this worker's catalogs.
@pytest.fixture(scope="module")
def job_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """`celery worker -B` on every queue of the test database, with the settings above."""
    folder = tmp_path_factory.mktemp("job-worker")
    catalogs = {"prod": (folder / "lake").as_uri()}
    log_path = folder / "worker.log"
    with django_db_blocker.unblock():
        queues = io.StringIO()
        call_command("worker_queues", stdout=queues)
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "WAREHOUSE_CATALOGS": json.dumps(catalogs),
            "WAREHOUSE_DEFAULT_CATALOG": "prod",
            **{name: str(value) for name, value in JOB_WORKER_SETTINGS.items()},
        }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "mlplatform",
        "worker",
        "-B",
        "-s",
        str(folder / "celerybeat-schedule"),  # its own, so no other beat shares the file
        "-Q",
        queues.getvalue().strip(),
        "-l",
        "info",
        "-c",
        "2",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"jobs-{os.getpid()}@%h",
    ]
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = JobWorker(proc, log_path, catalogs)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the job worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    yield worker
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
