"""The builds' reaper: a verification whose worker died fails with the reason; one whose message was
lost is sent again (to the io queue); recent builds are left alone."""

from datetime import timedelta
from unittest import mock

from django.utils import timezone

from builds import reaper, transitions
from builds.choices import BuildStatus
from builds.models import Build
from mlplatform.celery import app
from tests.factories import BuildFactory


def test_a_build_stuck_in_verification_fails_saying_why(settings, ml_model):
    settings.BUILD_TIMEOUT_S = 10
    stuck = BuildFactory(model=ml_model, status=BuildStatus.BUILDING, started_at=timezone.now() - timedelta(seconds=31))
    recent = BuildFactory(model=ml_model, status=BuildStatus.BUILDING, started_at=timezone.now())

    assert reaper.reap()["failed"] == 1

    stuck.refresh_from_db()
    recent.refresh_from_db()
    assert stuck.status == BuildStatus.FAILED and stuck.finished_at is not None
    assert "stopped before it finished; upload the build again" in stuck.log
    assert recent.status == BuildStatus.BUILDING
    assert reaper.reap()["failed"] == 0  # a second round changes nothing


def test_a_pending_build_whose_message_was_lost_is_sent_again(ml_model, django_capture_on_commit_callbacks):
    lost = BuildFactory(model=ml_model, status=BuildStatus.PENDING)
    Build.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    BuildFactory(model=ml_model, status=BuildStatus.PENDING)  # just uploaded: its message is on its way

    with mock.patch.object(app.amqp, "send_task_message") as publish:
        with django_capture_on_commit_callbacks(execute=True):
            counts = reaper.reap()

    assert counts["resent"] == 1
    ((_, name, message), kwargs) = publish.call_args
    assert name == "builds.verify_build" and kwargs["queue"].name == "io"
    assert message.body[0] == [str(lost.pk)]  # the task's args: the lost build's id


def test_build_transitions_are_safe_to_call_twice(ml_model):
    build = BuildFactory(model=ml_model, status=BuildStatus.PENDING)
    assert transitions.build_claim(build.pk) == 1
    assert transitions.build_claim(build.pk) == 0  # a redelivered verification finds it taken
    assert transitions.build_end(build.pk, ok=True, schema={"features": [], "predictions": []}, log="ok") == 1
    assert transitions.build_end(build.pk, ok=False, schema=None, log="late") == 0
    build.refresh_from_db()
    assert (build.status, build.log) == (BuildStatus.SUCCEEDED, "ok")
