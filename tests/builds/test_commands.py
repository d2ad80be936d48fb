"""manage.py load_demo and register_build."""

import io

import pytest
from django.core.management import CommandError, call_command

from builds.choices import BuildStatus
from builds.models import BatchConfig, Build, MLModel
from tables import selectors as table_selectors


@pytest.fixture
def demo(db, settings, tmp_path):
    settings.WAREHOUSE_CATALOGS = {"prod": (tmp_path / "lake").as_uri()}
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def test_load_demo_makes_a_verified_build_with_an_active_config_and_is_idempotent(demo, settings):
    model = MLModel.objects.get(model_id="ds-premium-fraud-detection")
    build = Build.objects.get(model=model)
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert [f["name"] for f in build.schema["features"]][:3] == ["amount", "country", "device"]
    assert [p["name"] for p in build.schema["predictions"]] == ["fraud_probability", "is_fraud"]
    config = BatchConfig.objects.get(is_active=True)
    assert (config.build, config.instance_type.name, config.processes) == (build, "ml.m5.large", "ALL")
    password = (settings.DATA_DIR / "demo_password").read_text()
    assert model.team.user_set.get(username="demo").check_password(password)

    catalog, name = table_selectors.resolve("prod.fraud_in_premium_model.input")
    assert catalog.row_count(name) == 100_000
    columns = [c.name for c in catalog.columns(name)]
    assert {f["name"] for f in build.schema["features"]} <= set(columns)
    assert "transaction_id" in columns and "label" not in columns
    first = catalog.head(name, 3).to_pylist()

    call_command("load_demo", stdout=io.StringIO())
    assert Build.objects.count() == 1 and BatchConfig.objects.count() == 1
    assert (settings.DATA_DIR / "demo_password").read_text() == password
    assert catalog.row_count(name) == 100_000 and catalog.head(name, 3).to_pylist() == first


def test_register_build_uploads_and_reports(demo, tmp_path):
    from tests.artifacts import model_zip

    artifact = tmp_path / "scorer.zip"
    artifact.write_bytes(model_zip())
    out = io.StringIO()
    call_command(
        "register_build",
        "ds-premium-fraud-detection",
        str(artifact),
        "--entrypoint",
        "scorer:Scorer",
        "--user",
        "demo",
        stdout=out,
    )
    build = Build.objects.get(number=2)
    assert f"Build 2 of ds-premium-fraud-detection uploaded: {build.id}" in out.getvalue()
    assert build.status == BuildStatus.PENDING


def test_register_build_names_the_bad_argument(demo, tmp_path):
    artifact = tmp_path / "scorer.zip"
    artifact.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match="artifact: the file is not a readable .zip archive"):
        call_command(
            "register_build", "ds-premium-fraud-detection", str(artifact), "--entrypoint", "s:S", "--user", "demo"
        )
    with pytest.raises(CommandError, match="--user: no user named 'nobody'"):
        call_command("register_build", "ds-premium-fraud-detection", str(artifact), "--user", "nobody")
    assert Build.objects.count() == 1
