"""Model code in the sandbox (bubblewrap): a hostile model tries to reach what is not its own, at
import time and in predict(), and records each attempt in its output. Run once in the sandbox
(every attempt denied, the job succeeds) and once with MODEL_SANDBOX=off (the same attempts
succeed: the sandbox is what stops them)."""

import json
import socket

import pytest
from django.conf import settings as django_settings

from batchjobs.choices import JobStatus
from batchjobs.models import BatchAttempt
from builds.runtime import sandbox
from tests.batchjobs.jobkit import IN_BATCHES, make_input, model_with_config, output_rows, run_job, trigger

pytestmark = [
    pytest.mark.usefixtures("job_storage"),
    pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap (apt-get install bubblewrap)"),
]

# Each probe: a name, and Python that returns what it got (any exception means denied).
PROBES = {
    "secret_key": "open({secret_key!r}).read()[:5]",
    "database_file": "open({database!r}, 'rb').read(16)",
    "other_table": "open({other_table!r}, 'rb').read(4)",
    "worker_environ": "open('/proc/{worker_pid}/environ', 'rb').read(16)",
    # In its own PID namespace, /proc/1 is the sandbox's own first process, holding the model's
    # environment only: "GOT" means it found a variable of the platform's there.
    "init_environ": "[v for v in open('/proc/1/environ', 'rb').read().split(b'\\0') if b'MLPLATFORM' in v][0]",
    "write_outside": "open({outside!r}, 'w').write('x')",
    "connect_local": "__import__('socket').create_connection(('127.0.0.1', {port}), timeout=1).close() or 'open'",
}


def hostile_body(**values) -> str:
    """predict(): run every probe and print the results (JSON) to its log; predict as usual."""
    lines = ["import json, sys", "results = {}"]
    for name, probe in PROBES.items():
        lines += [
            "try:",
            f"    results[{name!r}] = 'GOT ' + repr({probe.format(**values)})[:40]",
            "except Exception as exc:",
            f"    results[{name!r}] = 'denied: ' + type(exc).__name__",
        ]
    lines.append('print("PROBES " + json.dumps(results), file=sys.stderr)')
    lines.append('return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)')
    return IN_BATCHES + "\n        ".join(lines)


@pytest.fixture
def listener():
    """A port on 127.0.0.1 that accepts connections (as PostgreSQL's and Redis's do)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def run_hostile(ml_model, user, tmp_path, listener, settings) -> dict:
    other = make_input("prod.other.secret_rows", 10)
    other_file = next((tmp_path / "lake" / "other" / "secret_rows").glob("*.parquet"))
    values = dict(
        secret_key=str(django_settings.SECRET_KEY_FILE),
        database=str(django_settings.DATABASES["default"]["NAME"]),
        other_table=str(other_file),
        worker_pid=__import__("os").getpid(),
        outside=str(tmp_path / "written-by-the-model"),
        port=listener,
    )
    assert other
    model_with_config(ml_model, user, hostile_body(**values))
    make_input("prod.t.input", 1_000)
    job = run_job(trigger(ml_model, user, "prod.t.input"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert len(output_rows("prod.out.scores")) == 1_000
    log = BatchAttempt.objects.filter(batch__job=job).get().log
    return json.loads(log.split("PROBES ", 1)[1].splitlines()[0])


def test_in_the_sandbox_every_attempt_is_denied_and_the_job_succeeds(ml_model, user, tmp_path, listener, settings):
    settings.MODEL_SANDBOX = "required"
    results = run_hostile(ml_model, user, tmp_path, listener, settings)
    assert all(value.startswith("denied") for value in results.values()), results
    assert set(results) == set(PROBES)
    assert not (tmp_path / "written-by-the-model").exists()


def test_without_the_sandbox_the_same_model_gets_them(ml_model, user, tmp_path, listener, settings):
    settings.MODEL_SANDBOX = "off"
    results = run_hostile(ml_model, user, tmp_path, listener, settings)
    exposed = {name for name, value in results.items() if value.startswith("GOT")}
    # What the sandbox stops (the database file exists only with SQLite; /proc/1 may be unreadable).
    assert {"secret_key", "other_table", "worker_environ", "write_outside", "connect_local"} <= exposed, results
