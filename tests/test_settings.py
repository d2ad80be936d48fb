"""Settings come from environment variables; a malformed one stops the start, naming it."""

import os
import subprocess
import sys

import pytest

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
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' must be one of"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y'"),
        ("CELERY_BROKER_URL", "kafka://x", "CELERY_BROKER_URL='kafka://x' must be a URL starting with one of"),
        ("WAREHOUSE_CATALOGS", "{not json", "WAREHOUSE_CATALOGS is not valid JSON"),
        ("WAREHOUSE_CATALOGS", '["a"]', "WAREHOUSE_CATALOGS must be a JSON object of strings"),
        ("ARTIFACTS_URL", "ftp://x", "ARTIFACTS_URL='ftp://x' must be a URL starting with one of"),
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
