"""Shared fixtures. The lines up to the imports of Django run before Django is set up.

Every test run gets its own data dir (SQLite test database, artifacts, the local broker's
folders, the lake); a worker process started by the tests inherits the same variables.
"""

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

if "MLPLATFORM_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="mlplatform-test-")
    os.environ["MLPLATFORM_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")

import django  # noqa: E402
import pytest  # noqa: E402

django.setup()
from django.db import connection  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _yield_deadlocks_to_workers(sender, connection, **kwargs) -> None:
    """A transactional test's flush (TRUNCATE of every table) can deadlock with a running worker's
    reaper: make this process the patient side, so PostgreSQL picks the worker's statement to abort
    (its task runs again a second later) rather than the test's teardown. Needs a superuser (CI)."""
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '10s'")  # at connect: autocommit, nothing else to undo
    except Exception:  # noqa: BLE001, S110 - not a superuser: the default stays
        pass


connection_created.connect(_yield_deadlocks_to_workers)


# Factories import Django models, so they are imported once Django is set up, in the fixtures.
@pytest.fixture
def team(db):
    from tests.factories import GroupFactory

    return GroupFactory(name="fraud-team")


@pytest.fixture
def user(team):
    from tests.factories import UserFactory

    return UserFactory(username="alice", teams=[team])


@pytest.fixture
def outsider(db):
    from tests.factories import GroupFactory, UserFactory

    return UserFactory(username="mallory", teams=[GroupFactory(name="other-team")])


@pytest.fixture
def ml_model(team):
    from tests.factories import MLModelFactory

    return MLModelFactory(model_id="ds-premium-fraud-detection", team=team)


@pytest.fixture
def web(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def api(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def database_url() -> str:
    """The URL of the test database, for processes the tests start."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


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


@contextmanager
def worker_settings(settings, worker: JobWorker, **extra):
    """The test process reads and writes tables where `worker` does, with its settings
    (JOB_WORKER_SETTINGS and `extra`); and no Celery task may crash in it meanwhile (faults end
    batches with their cause instead)."""
    assert worker.poll() is None, f"the worker exited:\n{worker.log()[-4000:]}"
    settings.WAREHOUSE_CATALOGS = worker.catalogs
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    for name, value in {**JOB_WORKER_SETTINGS, **extra}.items():
        setattr(settings, name, value)
    since = worker.log_size()
    yield worker
    crashed = [line for line in worker.log(since).splitlines() if "raised unexpected" in line]
    assert not crashed, "a task crashed in the worker:\n" + "\n".join(crashed)


@contextmanager
def running_worker(folder: Path, **extra_env: str):
    """`celery worker -B` on every queue of the test database, with JOB_WORKER_SETTINGS and
    `extra_env`, its lake in `folder`; stopped at the end."""
    catalogs = {"prod": (folder / "lake").as_uri()}
    log_path = folder / "worker.log"
    # From the seeded catalog, not the database: a transactional test before may have emptied it.
    from builds.catalog import CATALOG
    from mlplatform.queues import CONTROL_QUEUE, IO_QUEUE

    queues = ",".join([CONTROL_QUEUE, IO_QUEUE, *sorted(name for name, *_ in CATALOG)])
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WAREHOUSE_CATALOGS": json.dumps(catalogs),
        "WAREHOUSE_DEFAULT_CATALOG": "prod",
        **{name: str(value) for name, value in JOB_WORKER_SETTINGS.items()},
        **extra_env,
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
        queues,
        "-l",
        "info",
        "-c",
        "2",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"jobs-{os.getpid()}-{folder.name}@%h",
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
    try:
        yield worker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# Module scope, not session: a worker left running would take the control-queue tasks of later
# tests (a job triggered through a live server) and run them with this worker's catalogs.
@pytest.fixture(scope="module")
def job_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """`celery worker -B` on every queue of the test database, with the settings above."""
    with ExitStack() as stack:
        with django_db_blocker.unblock():
            worker = stack.enter_context(running_worker(tmp_path_factory.mktemp("job-worker")))
        yield worker


def model_process_name(process) -> str:
    """mlp-spare or mlp-model (see builds/runtime/child.py), for a model process started plainly or
    in bubblewrap (then it is bwrap's descendant); "" when it is gone or not one."""
    import psutil

    try:
        names = [p.name() for p in [process, *process.children(recursive=True)]]
    except psutil.Error:
        return ""
    return next((n for n in names if n.startswith("mlp-")), "")


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


class LocalServer:
    """A server on 127.0.0.1 that a test's models talk to (models run sandboxed, so a file of the
    test's is out of their reach; their batch config allows network access): each connection is
    handed to `answer` on a thread of its own."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.server.close()


class Switch(LocalServer):
    """A flag a model can read while it runs, as a model reads an outside service: each connection
    is answered "fail" or "ok"."""

    def __init__(self) -> None:
        self.failing = False
        super().__init__()

    def answer(self, conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"fail" if self.failing else b"ok")

    def model_check(self, condition: str, message: str = "flaky") -> str:
        """predict() lines (at its indentation) that raise RuntimeError(message) when `condition`
        holds while the switch says fail (it asks only then: build verification has no network)."""
        return (
            f"import socket\n        if {condition}:\n"
            f"            with socket.create_connection(('127.0.0.1', {self.port}), timeout=5) as conn:\n"
            f"                if conn.recv(8) == b'fail': raise RuntimeError({message!r})\n        "
        )


@pytest.fixture
def switch():
    made = Switch()
    yield made
    made.close()


@pytest.fixture(scope="module", autouse=True)
def verify_builds_again_per_module():
    """jobkit reuses a build's verification within a module only: each module verifies for real."""
    jobkit = sys.modules.get("tests.batchjobs.jobkit")
    if jobkit is not None:
        jobkit.VERIFIED.clear()


@pytest.fixture
def job_storage(settings, tmp_path):
    """A lake and a staging folder of the test's own."""
    from batchjobs.pipeline import predict

    settings.WAREHOUSE_CATALOGS = {"prod": (tmp_path / "lake").as_uri()}
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    settings.STAGING_URL = (tmp_path / "staging").as_uri()
    yield tmp_path
    predict._close_loaded()  # the model process this test process kept for the next batches
