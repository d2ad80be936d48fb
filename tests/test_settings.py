"""Settings come from environment variables; a malformed one stops the start, naming it.
Importing them has no side effects; starting Django prepares the data dir. Tasks are routed to
queues by kind of work in settings."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from unittest import mock

import pytest
from django.core.management import call_command

from tests.conftest import REPO


def start_with(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_INPUT_ROWS", "lots", "MAX_INPUT_ROWS='lots' is not a whole number"),
        ("PREDICT_TIMEOUT_S", "0", "PREDICT_TIMEOUT_S='0' must be at least 1"),
        ("EVENTS_SOURCE", "40000", "EVENTS_SOURCE='40000' must be at most 32767"),
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' must be one of"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y'"),
        ("CELERY_BROKER_URL", "kafka://x", "CELERY_BROKER_URL='kafka://x' must be a URL starting with one of"),
        ("WAREHOUSE_CATALOGS", "{not json", "WAREHOUSE_CATALOGS is not valid JSON"),
        ("WAREHOUSE_CATALOGS", '["a"]', "WAREHOUSE_CATALOGS must be a JSON object of strings"),
        ("ARTIFACTS_URL", "ftp://x", "ARTIFACTS_URL='ftp://x' must be a URL starting with one of"),
        ("PUBLIC_URL", "ml.example.com", "PUBLIC_URL='ml.example.com' must be a URL starting with one of"),
        ("NOTIFY_TIMEOUT_S", "600", "NOTIFY_TIMEOUT_S='600' must be at most 60"),
    ],
)
def test_a_malformed_variable_stops_the_start_naming_it(name, value, message):
    result = start_with(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_defaults_need_no_server_and_live_in_the_data_dir(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["MLPLATFORM_DATA_DIR"] = str(tmp_path)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['NAME']); print(s.CELERY_BROKER_URL); print(s.ARTIFACTS_URL)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    database, broker, artifacts = result.stdout.split()
    assert database == str(tmp_path / "db.sqlite3")
    assert broker == "filesystem://localhost/"
    assert artifacts == (tmp_path / "artifacts").as_uri()
    secret = (tmp_path / "secret_key").read_text()
    assert len(secret) >= 50 and oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


@pytest.mark.parametrize(("value", "expected"), [(None, 0), ("60", 60)])
def test_database_connections_live_per_request_unless_set_and_are_checked_before_reuse(tmp_path, value, expected):
    env = {"DB_CONN_MAX_AGE": value} if value else {}
    code = (
        "import django; django.setup(); from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    url = "postgresql://postgres@127.0.0.1:5432/test"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if k != "DB_CONN_MAX_AGE"}, "DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == [str(expected), "True"], result.stderr


HTTPS = {
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_COOKIES": "true",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
    "DJANGO_BEHIND_HTTPS_PROXY": "true",
}


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "manage.py", "check", "--deploy"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="production runs models in bubblewrap")
def test_check_deploy_reports_nothing_with_the_production_variables_set(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        **HTTPS,
        "MLPLATFORM_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
        "DJANGO_ALLOWED_HOSTS": "ml.example.com",
        "MODEL_SANDBOX": "required",
    }
    done = check_deploy(env)
    assert done.returncode == 0 and "System check identified no issues (0 silenced)." in done.stdout, done.stderr
    done = check_deploy({k: v for k, v in env.items() if k not in HTTPS})
    assert all(f"security.{w}" in done.stderr for w in ("W004", "W008", "W012", "W016")), done.stderr
    assert "drf_spectacular" not in done.stderr


def run_python(code: str, data_dir) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY"}}
    env["MLPLATFORM_DATA_DIR"] = str(data_dir)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_settings_creates_nothing_and_patches_no_library(tmp_path):
    data_dir = tmp_path / "not-yet"
    code = (
        "import json; from kombu.transport import TRANSPORT_ALIASES as aliases; before = dict(aliases); "
        "import mlplatform.settings as s; "
        "print(json.dumps([str(s.DATA_DIR), s.SECRET_KEY, aliases == before, aliases['filesystem']]))"
    )
    settings_data_dir, secret_key, aliases_untouched, filesystem = json.loads(run_python(code, data_dir))
    assert settings_data_dir == str(data_dir)
    assert list(tmp_path.iterdir()) == []  # no data dir, no secret key, no broker folders
    assert secret_key == ""  # nothing to read yet; the start-up step generates it
    assert aliases_untouched and filesystem == "kombu.transport.filesystem:Transport"


def test_starting_django_prepares_the_data_dir_with_one_secret_key_for_every_process(tmp_path):
    data_dir = tmp_path / "not-yet"
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    first, second = run_python(code, data_dir).strip(), run_python(code, data_dir).strip()
    assert len(first) >= 50 and first == second == (data_dir / "secret_key").read_text()
    assert oct((data_dir / "secret_key").stat().st_mode)[-3:] == "600"
    assert {p.name for p in (data_dir / "broker").iterdir()} == {"queue", "processed", "control"}
    assert (data_dir / "static").is_dir()
    assert sorted(p.name for p in data_dir.iterdir()) == ["broker", "secret_key", "static"]


def test_the_celery_app_sends_filesystem_messages_through_the_atomic_transport(tmp_path):
    code = (
        "from kombu.transport import TRANSPORT_ALIASES as aliases; import mlplatform.celery; "
        "print(aliases['filesystem'])"
    )
    assert run_python(code, tmp_path).strip() == "mlplatform.broker:Transport"


# --- queues ----------------------------------------------------------------------------------


def queue_of(send) -> str:
    """The queue a task sent by `send()` is published to (nothing reaches the broker)."""
    from mlplatform.celery import app

    with mock.patch.object(app.amqp, "send_task_message") as publish:
        send()
    (call,) = publish.call_args_list
    return call.kwargs["queue"].name


@pytest.mark.parametrize(
    ("send_name", "queue"),
    [("send_admit", "control"), ("send_extract", "io"), ("send_commit", "io"), ("send_notifications", "io")],
)
def test_dispatch_sends_each_kind_of_work_to_its_queue(db, django_capture_on_commit_callbacks, send_name, queue):
    from batchjobs import dispatch

    send = getattr(dispatch, send_name)
    args = {"send_admit": [], "send_notifications": [[1, 2]]}.get(send_name, [uuid.uuid4()])

    def send_and_commit():
        with django_capture_on_commit_callbacks(execute=True):
            send(*args)

    assert queue_of(send_and_commit) == queue


def test_a_batch_goes_to_its_instance_types_queue(db, django_capture_on_commit_callbacks):
    from batchjobs import dispatch

    def send_and_commit():
        with django_capture_on_commit_callbacks(execute=True):
            dispatch.send_predict(7, "ml.r5.large")

    assert queue_of(send_and_commit) == "ml.r5.large"


def test_build_verification_and_the_reapers_are_routed_by_name():
    from builds.tasks import verify_build
    from mlplatform.celery import app

    assert queue_of(lambda: verify_build.delay(str(uuid.uuid4()))) == "io"
    assert queue_of(lambda: app.send_task("batchjobs.reap")) == "control"
    assert queue_of(lambda: app.send_task("builds.reap")) == "control"
    assert queue_of(lambda: app.send_task("batchjobs.schedules_tick")) == "control"
    assert queue_of(lambda: app.send_task("some.unrouted_task")) == "control"  # the default queue


def test_beat_runs_both_reapers_at_the_reaper_interval_and_the_schedules_tick_at_its_own(settings):
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule == {
        "batchjobs.reap": settings.REAPER_INTERVAL_S,
        "builds.reap": settings.REAPER_INTERVAL_S,
        "batchjobs.schedules_tick": settings.SCHEDULE_TICK_S,
    }


def test_worker_queues_lists_control_io_and_every_active_predict_queue(db, capsys):
    from builds.models import InstanceType

    InstanceType.objects.create(name="ml.t3.retired", vcpus=1, memory_mib=512, queue="ml.t3.retired", is_active=False)
    predict = sorted(set(InstanceType.objects.filter(is_active=True).values_list("queue", flat=True)))
    assert predict and "ml.t3.retired" not in predict

    def output(*options):
        call_command("worker_queues", *options)
        return capsys.readouterr().out.strip()

    assert output() == ",".join(["control", "io", *predict])
    assert output("--control-only") == "control"
    assert output("--io-only") == "io"
    assert output("--predict-only") == ",".join(predict)
