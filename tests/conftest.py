"""Shared fixtures. The lines up to the imports of Django run before Django is set up.

Every test run gets its own data dir (SQLite test database, artifacts, the local broker's
folders, the lake); a worker process started by the tests inherits the same variables.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
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

REPO = Path(__file__).resolve().parent.parent

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the test database and the configured broker."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": database_url()}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mlplatform",
                "worker",
                "-l",
                "info",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    proc.log_path = log_path
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


@pytest.fixture
def job_storage(settings, tmp_path):
    """A lake and a staging folder of the test's own."""
    from batchjobs.pipeline import predict

    settings.WAREHOUSE_CATALOGS = {"prod": (tmp_path / "lake").as_uri()}
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    settings.STAGING_URL = (tmp_path / "staging").as_uri()
    yield tmp_path
    predict._close_loaded()  # the model process this test process kept for the next batches
