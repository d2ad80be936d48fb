"""Model code in the sandbox, tried as a hostile model would, through a real worker (Celery, its
pool processes, their model processes in bubblewrap): at import time and in predict(), a model
tries to reach what is not its own and to break its limits (tests/batchjobs/probes.py), and
records each result in its output. Build verification and "Try on 100 rows" run the same model.

With MODEL_SANDBOX=required every attempt is denied and the job succeeds; with Allow network
access the connections succeed and nothing else changes; with MODEL_SANDBOX=off the same attempts
get through (so the sandbox is what stops them)."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pytest
from django.conf import settings as django_settings
from django.db import connection
from pyarrow import fs as pafs

from batchjobs import services
from batchjobs.choices import JobStatus
from batchjobs.pipeline import staging
from builds.choices import BuildStatus
from builds.models import Build, InstanceType
from builds.runtime import sandbox
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tests.artifacts import source_zip, upload
from tests.conftest import JOB_WORKER_SETTINGS, running_worker, wait_for
from tests.factories import GroupFactory, MLModelFactory, UserFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap (apt-get install bubblewrap)"),
]

PROBES = Path(__file__).with_name("probes.py").read_text()
DISK_MB = 64  # the worker's MODEL_DISK_MB: a model's largest file and its /tmp
# The probes take a second or two: room for them on a busy machine.
SETTINGS = {**JOB_WORKER_SETTINGS, "PREDICT_TIMEOUT_S": 60, "MODEL_DISK_MB": DISK_MB}

HOSTILE = """
import json
import pandas as pd
import probes
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

AT_IMPORT = json.dumps(probes.run())


class Scorer(Model):
    def schema(self):
        predictions = [Prediction("score", "float"), Prediction("at_import", "str"), Prediction("in_predict", "str")]
        return ModelSchema([Feature("amount", "float")], predictions, deterministic=False)  # its probes vary

    def predict(self, df):
        in_predict = json.dumps(probes.run())
        print("PROBES " + in_predict)
        columns = {"score": df["amount"] * 2, "at_import": AT_IMPORT, "in_predict": in_predict}
        return pd.DataFrame(columns, index=df.index)
"""

GREEDY = """
import resource
import pandas as pd
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction


class Scorer(Model):
    def schema(self):
        return ModelSchema([Feature("amount", "float")], [Prediction("score", "float")])

    def predict(self, df):
        if "id" in df:  # on a real batch: ten times the memory it may use, not caught
            bytearray(10 * resource.getrlimit(resource.RLIMIT_AS)[0])
        return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)
"""


@pytest.fixture(scope="module")
def hostile_worker(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """A worker with MODEL_SANDBOX=<param>, whose HOME holds AWS credentials (as an operator's may)."""
    folder = tmp_path_factory.mktemp(f"worker-{request.param}")
    home = folder / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = a-real-looking-secret\n")
    with django_db_blocker.unblock():
        overrides = {name: str(value) for name, value in SETTINGS.items()}
        context = running_worker(folder, MODEL_SANDBOX=request.param, HOME=str(home), **overrides)
        worker = context.__enter__()
    worker.mode, worker.home = request.param, home
    yield worker
    context.__exit__(None, None, None)


@pytest.fixture
def listener():
    """A port on 127.0.0.1 that accepts connections, as PostgreSQL's and Redis's do."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def owner(settings, hostile_worker):
    """A user of the team that runs the model; the test process uses the worker's lake and mode."""
    assert hostile_worker.poll() is None, f"the worker exited:\n{hostile_worker.log()[-4000:]}"
    settings.WAREHOUSE_CATALOGS = hostile_worker.catalogs
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    settings.MODEL_SANDBOX = hostile_worker.mode
    for name, value in SETTINGS.items():
        setattr(settings, name, value)
    return UserFactory(username="hostile", teams=[GroupFactory(name="hostile-team")])


def listening(port: int) -> bool:
    """Whether something on this host accepts connections on `port` (PostgreSQL, Redis)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def make_table(name: str, rows: int) -> str:
    catalog, table = table_selectors.resolve(name)
    data = pa.table({"id": pa.array(range(rows), pa.int64()), "amount": pa.array([i * 0.5 for i in range(rows)])})
    catalog.create(table, data.schema, data.to_batches())
    return name


def targets(worker, port: int, *, limits: bool, network: bool = False) -> dict:
    """What the model goes after: files of the platform, the operator and other teams, the worker's
    processes, the database and broker ports (and a listener of the test's)."""
    other = make_table(f"prod.otherteam.secret_{uuid.uuid4().hex[:8]}", 10)
    lake = Path(urlparse(worker.catalogs["prod"]).path)
    other_file = next((lake / "otherteam" / other.rsplit(".", 1)[1]).rglob("*.parquet"))
    filesystem, root = pafs.FileSystem.from_uri(django_settings.STAGING_URL)
    assert isinstance(filesystem, pafs.LocalFileSystem)
    other_job = Path(root) / staging.input_path(10**9, 0)
    other_job.parent.mkdir(parents=True, exist_ok=True)
    other_job.write_bytes(b"PAR1 another job's rows")
    return {
        "secret_key": str(django_settings.SECRET_KEY_FILE),
        "aws_credentials": str(worker.home / ".aws" / "credentials"),
        "other_team_table": str(other_file),
        "other_job_staging": str(other_job),
        "worker_pid": worker.pid,
        "write_outside": str(django_settings.DATA_DIR / f"a-model-was-here-{uuid.uuid4().hex[:6]}"),
        "database_file": str(connection.settings_dict["NAME"]) if connection.vendor == "sqlite" else "",
        "ports": [5432, 6379, port],
        "limits": limits,
        "network": network,
    }


def hostile_config(owner, found: dict, code: str = HOSTILE, *, allow_network: bool = False, env=None):
    """A model of `code` (with the probes, aimed at `found`), verified, with an active batch config."""
    model = MLModelFactory(model_id=f"hostile-{uuid.uuid4().hex[:8]}", team=owner.groups.first())
    probes = PROBES.replace(
        'json.loads(os.environ.get("PROBE_TARGETS_JSON", "{}"))', f"json.loads({json.dumps(found)!r})"
    )
    build = build_register(
        model=model,
        upload=upload(source_zip(code, extra={"probes.py": probes})),
        filename="hostile.zip",
        entrypoint="scorer:Scorer",
        created_by=owner,
    )
    build_verify(build_id=build.id)  # here, or in the worker: whichever claims it first
    build = wait_for(
        lambda: Build.objects.filter(pk=build.pk, status__in=BuildStatus.TERMINAL).first(),
        timeout=90,
        message="the build's verification",
    )
    assert build.status == BuildStatus.SUCCEEDED, build.log
    return batch_config_set(
        build=build,
        deployment_name="hostile",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        processes="ALL",
        env=env or {},
        allow_network=allow_network,
        set_by=owner,
    )


def run(config, owner, worker, rows: int = 1_000):
    """Trigger a job of `config` on a new input of `rows` rows; wait for it to end."""
    source = make_table(f"prod.hostile.in_{uuid.uuid4().hex[:8]}", rows)
    output = f"prod.hostile.out_{uuid.uuid4().hex[:8]}"
    job = services.job_trigger(model=config.model, input_table=source, output_table=output, requested_by=owner)

    def ended():
        assert worker.poll() is None, f"the worker exited:\n{worker.log()[-4000:]}"
        job.refresh_from_db()
        return job.status in JobStatus.TERMINAL and (job.status != JobStatus.SUCCEEDED or job.staging_removed)

    wait_for(ended, timeout=120, message=f"job {job.pk} to end")
    return job, output


def recorded(output: str, rows: int) -> tuple[dict, dict]:
    """What the model recorded at import and in predict(), from its output rows (the same in each)."""
    catalog, table = table_selectors.resolve(output)
    written = pa.Table.from_batches(list(catalog.read_batches(table))).to_pylist()
    assert len(written) == rows
    assert all(row["score"] == row["amount"] * 2 for row in written)
    assert len({row["in_predict"] for row in written}) >= 1
    first = written[0]
    return json.loads(first["at_import"]), json.loads(first["in_predict"])


def assert_denied(results: dict, *, except_: set[str] = frozenset()) -> None:
    for name, result in results.items():
        if name not in except_:
            assert result.startswith("denied"), f"{name}: {result}\n{json.dumps(results, indent=1)}"


@pytest.mark.parametrize("hostile_worker", ["required"], indirect=True)
def test_in_the_sandbox_every_attempt_is_denied_and_the_job_succeeds(hostile_worker, owner, listener):
    found = targets(hostile_worker, listener, limits=True)
    config = hostile_config(owner, found)
    # Build verification ran the model's import and predict() in the sandbox too.
    verified = config.build.log.split("PROBES ", 1)[1].splitlines()[0]
    assert_denied(json.loads(verified))

    job, output = run(config, owner, hostile_worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    at_import, in_predict = recorded(output, 1_000)
    for results in (at_import, in_predict):
        assert set(results) >= {"secret_key", "aws_credentials", "other_team_table", "other_job_staging"}
        assert_denied(results)
        assert {f"connect_{port}" for port in (5432, 6379, listener)} <= set(results)
        processes = int(results["fork_10000"].split()[2])
        assert processes < django_settings.MODEL_MAX_PROCESSES, results["fork_10000"]
        assert "MemoryError" in results["allocate_10x"]
        assert "File too large" in results["write_10_gib"], results["write_10_gib"]
        assert int(results["write_10_gib"].split("stopped at ")[1].split()[0]) <= DISK_MB
    assert not Path(found["write_outside"]).exists()
    assert not (Path(found["other_team_table"]).parent / "x.parquet").exists()

    # "Try on 100 rows" runs it in the same sandbox.
    trial = services.job_try(model=config.model, input_table=job.input_table)
    column = trial.columns.index("in_predict")
    assert_denied(json.loads(trial.rows[0][column]))


@pytest.mark.parametrize("hostile_worker", ["required"], indirect=True)
def test_with_network_access_allowed_the_connections_succeed_and_nothing_else_changes(hostile_worker, owner, listener):
    found = targets(hostile_worker, listener, limits=True, network=True)
    config = hostile_config(owner, found, allow_network=True)
    job, output = run(config, owner, hostile_worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    at_import, in_predict = recorded(output, 1_000)
    connects = {f"connect_{port}" for port in (5432, 6379, listener) if port == listener or listening(port)}
    connects |= {"connect_by_name"}  # host names resolve: the sandbox's /etc is readable by its user
    for results in (at_import, in_predict):
        for name in connects | {"ca_certificates"}:  # and HTTPS clients find the system's certificates
            assert results[name].startswith("GOT"), results
        assert_denied(results, except_=connects | {"connect_5432", "connect_6379", "ca_certificates"})
        assert int(results["fork_10000"].split()[2]) < django_settings.MODEL_MAX_PROCESSES, results["fork_10000"]
        assert "MemoryError" in results["allocate_10x"]
        assert "File too large" in results["write_10_gib"], results["write_10_gib"]


@pytest.mark.parametrize("hostile_worker", ["required"], indirect=True)
def test_a_model_that_goes_past_its_memory_limit_fails_the_job_with_the_reason(hostile_worker, owner, listener):
    config = hostile_config(owner, {}, code=GREEDY)
    job, output = run(config, owner, hostile_worker)
    assert job.status == JobStatus.FAILED
    assert "MemoryError: the model ran out of memory" in job.message, job.message
    assert not table_selectors.resolve(output)[0].exists(table_selectors.resolve(output)[1])


@pytest.mark.parametrize("hostile_worker", ["off"], indirect=True)
def test_without_the_sandbox_the_same_model_gets_them(hostile_worker, owner, listener):
    found = targets(hostile_worker, listener, limits=False)
    config = hostile_config(owner, found)
    job, output = run(config, owner, hostile_worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    at_import, in_predict = recorded(output, 1_000)
    exposed = {name for name, value in in_predict.items() if value.startswith("GOT")}
    expected = {
        "secret_key",
        "aws_credentials",
        "other_team_table",
        "other_job_staging",
        "worker_environ",
        "write_data_dir",
        "write_table_folder",
        f"connect_{listener}",
        "connect_by_name",
        "user_namespace",
    }
    expected |= {"database_file"} if found["database_file"] else set()
    expected |= {f"connect_{port}" for port in (5432, 6379) if listening(port)}
    assert expected <= exposed, in_predict
    assert expected <= {name for name, value in at_import.items() if value.startswith("GOT")}, at_import
    Path(found["write_outside"]).unlink()
    assert "Model code runs without a sandbox on this worker: MODEL_SANDBOX=off" in hostile_worker.log()


SLOW_TO_LOAD = """
import os
import time
import pandas as pd
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

time.sleep(float(os.environ.get("LOAD_SECONDS", "0")))  # a large model, read at import


class Scorer(Model):
    def schema(self):
        return ModelSchema([Feature("amount", "float")], [Prediction("score", "float")])

    def predict(self, df):
        return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)
"""


@pytest.mark.parametrize("hostile_worker", ["required"], indirect=True)
def test_a_model_that_loads_for_longer_than_a_batch_lease_runs_on_its_first_attempt(hostile_worker, owner):
    """Loading keeps the batch's lease (4 s here) like predict() does: a model that takes 8 s to
    load is not taken for a dead worker's."""
    config = hostile_config(owner, {}, code=SLOW_TO_LOAD, env={"LOAD_SECONDS": "8"})
    job, output = run(config, owner, hostile_worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert list(job.batches.values_list("attempts", flat=True)) == [1]
