"""Batch configs: one active per model (enforced by the database), validation that saves nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from builds.choices import BuildStatus
from builds.models import BatchConfig, InstanceType
from builds.services import batch_config_set
from tests.factories import BatchConfigFactory, BuildFactory


@pytest.fixture
def build(ml_model):
    return BuildFactory(model=ml_model, number=1)


def set_config(build, user, **overrides):
    values = {
        "deployment_name": "fraud-batch",
        "instance_type": InstanceType.objects.get(name="ml.m5.large"),
        "processes": "ALL",
        "env": {"FRAUD_THRESHOLD": "0.3"},
    }
    return batch_config_set(build=build, set_by=user, **{**values, **overrides})


def test_the_database_refuses_a_second_active_config_for_a_model(build):
    BatchConfigFactory(build=build, is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchConfigFactory(build=BuildFactory(model=build.model, number=2), is_active=True)
    # inactive ones are history and any number may exist
    BatchConfigFactory(build=build, is_active=False)
    BatchConfigFactory(build=build, is_active=False)
    assert BatchConfig.objects.filter(model=build.model, is_active=True).count() == 1


def test_the_database_refuses_a_processes_value_other_than_one_or_all(build):
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchConfigFactory(build=build, processes="TWO")


def test_setting_a_config_makes_it_active_and_keeps_the_old_one_as_history(build, user):
    first = set_config(build, user, deployment_name="first")
    newer_build = BuildFactory(model=build.model, number=2)
    second = set_config(newer_build, user, deployment_name="second", processes="ONE")
    first.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)
    assert second.env == {"FRAUD_THRESHOLD": "0.3"} and second.processes == "ONE"
    assert second.created_by == user
    assert list(BatchConfig.objects.filter(model=build.model).values_list("deployment_name", flat=True)) == [
        "second",
        "first",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"lower_case": "1"}, "'lower_case' is not allowed: names use only capital letters A-Z and underscores"),
        ({"MY-VAR": "1"}, "'MY-VAR' is not allowed"),
        ({"VAR1": "1"}, "'VAR1' is not allowed"),
        ({"PATH": "/tmp"}, "'PATH' is reserved"),
        ({"HOME": "/tmp"}, "'HOME' is reserved"),
        ({"LD_PRELOAD": "x.so"}, "'LD_PRELOAD' is reserved"),
        ({"PYTHONPATH": "/x"}, "'PYTHONPATH' is reserved"),
        ({"OK_NAME": "x" * 5000}, "longer than 4096 characters"),
    ],
)
def test_bad_environment_variables_are_refused_naming_the_field_and_nothing_is_saved(build, user, env, message):
    with pytest.raises(ValidationError) as refused:
        set_config(build, user, env=env)
    assert message in " ".join(refused.value.message_dict["env"])
    assert not BatchConfig.objects.exists()


@pytest.mark.parametrize("processes", ["SOME", "one", "", "2"])
def test_a_bad_processes_value_is_refused_naming_the_field_and_nothing_is_saved(build, user, processes):
    with pytest.raises(ValidationError) as refused:
        set_config(build, user, processes=processes)
    assert "must be ONE or ALL" in refused.value.message_dict["processes"][0]
    assert not BatchConfig.objects.exists()


@pytest.mark.parametrize("name", ["", "Has Caps", "-leading", "trailing-", "x" * 64, "semi;colon"])
def test_a_bad_deployment_name_is_refused(build, user, name):
    with pytest.raises(ValidationError) as refused:
        set_config(build, user, deployment_name=name)
    assert "deployment_name" in refused.value.message_dict
    assert not BatchConfig.objects.exists()


@pytest.mark.parametrize("status", [BuildStatus.PENDING, BuildStatus.BUILDING, BuildStatus.FAILED])
def test_only_a_succeeded_build_can_get_a_config(ml_model, user, status):
    build = BuildFactory(model=ml_model, status=status)
    with pytest.raises(ValidationError) as refused:
        set_config(build, user)
    assert "only a succeeded build can get a batch config" in refused.value.message_dict["build"][0]
    assert not BatchConfig.objects.exists()


def test_an_inactive_instance_type_cannot_be_chosen(build, user):
    retired = InstanceType.objects.create(name="ml.t2.retired", vcpus=1, memory_mib=1024, is_active=False)
    with pytest.raises(ValidationError) as refused:
        set_config(build, user, instance_type=retired)
    assert "instance_type" in refused.value.message_dict


def test_the_seeded_catalog_has_the_cloud_style_names(db):
    large = InstanceType.objects.get(name="ml.m5.large")
    assert (large.vcpus, large.memory_mib, large.queue) == (2, 8192, "ml.m5.large")
    assert {"ml.m5.xlarge", "ml.c5.2xlarge", "ml.r5.xlarge"} <= set(InstanceType.objects.values_list("name", flat=True))


def test_an_environment_value_with_a_nul_is_refused(web, ml_model):
    build = BuildFactory(model=ml_model)
    html = web.post(
        f"/builds/{build.id}/batch-config/",
        {
            "deployment_name": "ok",
            "instance_type": "ml.m5.large",
            "processes": "ALL",
            "env_key": ["A"],
            "env_value": ["x\x00y"],
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "contains a NUL character" in html
