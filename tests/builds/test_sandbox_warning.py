"""Where models run unsandboxed, staff see it on every page and `check --deploy` warns; with the
sandbox, nobody sees a warning."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from builds.runtime import sandbox

BAR = b"Model code runs without a sandbox on this server"


@pytest.fixture
def staff(client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def test_staff_see_the_bar_on_every_page_when_the_sandbox_is_off(staff, settings):
    settings.MODEL_SANDBOX = "off"
    for page in ("batchjobs:board", "tables:list"):
        body = staff.get(reverse(page)).content
        assert BAR in body and b"MODEL_SANDBOX=off" in body


def test_other_users_do_not_see_it(web, settings):
    settings.MODEL_SANDBOX = "off"
    assert BAR not in web.get(reverse("batchjobs:board")).content


def test_check_deploy_warns_when_models_run_unsandboxed(settings, capsys):
    settings.MODEL_SANDBOX = "off"
    call_command("check", "--deploy", "--tag", "security")
    captured = capsys.readouterr()
    assert "builds.W001" in captured.err + captured.out


@pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap")
def test_with_the_sandbox_there_is_no_bar_and_no_warning(staff, settings, capsys):
    settings.MODEL_SANDBOX = "required"
    assert BAR not in staff.get(reverse("batchjobs:board")).content
    call_command("check", "--deploy", "--tag", "security")
    captured = capsys.readouterr()
    assert "builds.W001" not in captured.err + captured.out
