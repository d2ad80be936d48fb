"""Scale-out, in the shape of a multi-host deployment: two predict workers, each with a data dir of
its own (no shared local folder), PostgreSQL, Redis, and artifacts, staging and the lake on S3 (the
local S3 server). They run one job together: each takes batches, and the output is exact.

Needs what CI runs: DATABASE_URL=postgresql://… and CELERY_BROKER_URL=redis://…"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.fs as pafs
import pytest
from django.conf import settings as django_settings
from django.db import connection

from batchjobs.choices import JobStatus
from builds.catalog import CATALOG
from mlplatform.queues import CONTROL_QUEUE, IO_QUEUE
from tests.batchjobs.test_worker_faults import (
    GOOD_PREDICT,
    IN_BATCHES,
    assert_output_is_the_input_with_predictions,
    load_model,
    make_config,
    make_input,
    new_output_name,
    owner,  # noqa: F401 - a fixture
    predict_body,
    settled,
    trigger,
)
from tests.conftest import REPO, database_url, wait_for
from tests.s3server import s3_endpoint, s3_url  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not django_settings.CELERY_BROKER_URL.startswith("redis"),
        reason="needs a shared broker (CELERY_BROKER_URL=redis://…) and PostgreSQL, as CI runs",
    ),
]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture
def on_s3(settings, s3_endpoint, monkeypatch):  # noqa: F811 - the fixture
    """Artifacts, staging and the lake on the local S3 server, for this process and the workers."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgresql://…), as CI runs")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    filesystem, _ = pafs.FileSystem.from_uri(s3_url(s3_endpoint, "platform", "x"))
    filesystem.create_dir("platform")
    urls = {
        "ARTIFACTS_URL": s3_url(s3_endpoint, "platform", "artifacts"),
        "STAGING_URL": s3_url(s3_endpoint, "platform", "staging"),
        "WAREHOUSE_CATALOGS": {"prod": s3_url(s3_endpoint, "platform", "lake")},
    }
    for name, value in urls.items():
        setattr(settings, name, value)
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    return urls


def start_worker(name: str, data_dir: Path, queues: list[str], urls: dict, *, beat: bool) -> subprocess.Popen:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLPLATFORM_", "WAREHOUSE_"))},
        **CREDENTIALS,
        "MLPLATFORM_DATA_DIR": str(data_dir),  # its own: nothing local is shared with the other worker
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "ARTIFACTS_URL": urls["ARTIFACTS_URL"],
        "STAGING_URL": urls["STAGING_URL"],
        "WAREHOUSE_CATALOGS": json.dumps(urls["WAREHOUSE_CATALOGS"]),
        "WAREHOUSE_DEFAULT_CATALOG": "prod",
        "REAPER_INTERVAL_S": "1",
    }
    command = [sys.executable, "-m", "celery", "-A", "mlplatform", "worker", "-Q", ",".join(queues), "-c", "1"]
    command += ["-n", f"{name}-{os.getpid()}@%h", "-l", "info", "--without-gossip", "--without-mingle"]
    if beat:
        command += ["-B", "-s", str(data_dir / "celerybeat-schedule")]
    data_dir.mkdir()
    log = (data_dir.parent / f"{name}.log").open("w")
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def log_of(data_dir: Path, name: str) -> str:
    return (data_dir.parent / f"{name}.log").read_text(errors="replace")


def test_two_predict_workers_with_nothing_local_in_common_run_one_job_together(on_s3, owner, tmp_path):  # noqa: F811
    predict_queues = sorted(name for name, *_ in CATALOG)  # a queue per instance type, of its name
    dirs = {"first": tmp_path / "host-a", "second": tmp_path / "host-b"}
    workers = {
        "first": start_worker("first", dirs["first"], [CONTROL_QUEUE, IO_QUEUE, *predict_queues], on_s3, beat=True),
        "second": start_worker("second", dirs["second"], predict_queues, on_s3, beat=False),
    }
    try:
        for name in workers:
            wait_for(lambda name=name: "ready." in log_of(dirs[name], name), timeout=60, message=f"{name} worker")
        body = predict_body(IN_BATCHES, "import time", "time.sleep(0.5)", GOOD_PREDICT)
        config = make_config(owner, body)
        input_table, output = make_input(8_000), new_output_name()
        job = trigger(config, owner, input_table, output)
        job = wait_for(lambda: settled(job.pk), timeout=120, message="the job to end")

        assert job.status == JobStatus.SUCCEEDED, job.message
        assert job.batches_total >= 4 and job.output_rows == 8_000
        assert_output_is_the_input_with_predictions(output, input_table, load_model(tmp_path, body))
        # Each worker took batches: a batch records the pool process that ran it.
        parents = {psutil.Process(pid).ppid() for pid in job.batches.values_list("worker_pid", flat=True)}
        assert parents == {workers["first"].pid, workers["second"].pid}
        # Each fetched the build from S3 into its own data dir; neither holds table data.
        for data_dir in dirs.values():
            assert (data_dir / "cache" / "builds" / str(config.build_id)).is_dir()
            assert not list(data_dir.rglob("*.parquet")) and not list(data_dir.rglob("_delta_log"))
    finally:
        for proc in workers.values():
            proc.terminate()
        for proc in workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        time.sleep(0.1)
