"""Where notifications may go (batchjobs/notify_guard.py): a short list of schemes, webhooks that
POST only, and public addresses only unless NOTIFY_ALLOWED_HOSTS lists the host. Refused when a
schedule is saved (the API's 400 names notify_urls) and again when sending (a failed notification,
never a request), checked against real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from batchjobs import notify, notify_guard, signals
from batchjobs.choices import JobStatus, NotificationStatus
from batchjobs.models import BatchJob, Schedule
from mlplatform.envvars import env_host_ports
from tests.batchjobs.hooks import Hook
from tests.batchjobs.schedulekit import API_BODY
from tests.batchjobs.test_notifications import make_job, make_schedule

pytestmark = pytest.mark.usefixtures("job_storage")  # a fresh lake for `ready`'s input table

ALLOWED = "notifications go to public addresses only, or to hosts listed in NOTIFY_ALLOWED_HOSTS"
BODY = API_BODY


@pytest.fixture
def hook():
    made = Hook()
    yield made
    made.close()


def send_once(ml_model, url: str, name: str = "nightly") -> tuple[BatchJob, object]:
    """A failed job of a schedule stored with `url` (as a schedule saved before these checks would
    be), notified, and one try of sending it."""
    job = make_job(ml_model, make_schedule(ml_model, urls=[url], name=name))
    signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
    (row,) = job.notifications.all()
    assert notify.notifications_send([row.pk], attempt=1) == []  # not tried again: a refusal is final
    row.refresh_from_db()
    return job, row


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("json://127.0.0.1:{port}/hooks/s3cr3t", "the address 127.0.0.1 is a loopback address"),
        ("json://localhost:{port}/hooks/s3cr3t", "the host localhost resolves to "),
        ("jsons://[::1]:{port}/x", "the address ::1 is a loopback address"),
        ("form://169.254.0.9:9/latest/meta-data/", "the address 169.254.0.9 is a link-local address"),
        ("xml://10.255.255.1:9/_search", "the address 10.255.255.1 is a private address"),
        ("json://0.0.0.0:{port}/x", "the address 0.0.0.0 is an unspecified address"),
        ("mailto://u:p4ss@example.com?smtp=192.168.1.5&to=ops@example.com", "the address 192.168.1.5 is a private"),
        ("ntfy://10.255.255.2:9/topic", "the address 10.255.255.2 is a private address"),
    ],
)
def test_a_url_to_an_address_that_is_not_public_is_failed_without_a_request(ml_model, hook, web, url, why):
    job, row = send_once(ml_model, url.format(port=hook.port))
    assert row.status == NotificationStatus.FAILED and row.sent_at is None
    assert row.error.startswith(f"Not sent: {why}") and row.error.endswith(f"{ALLOWED}.")
    assert hook.requests == []
    html = web.get(reverse("batchjobs:job-detail", args=[job.pk])).content.decode()
    assert ALLOWED in html and "s3cr3t" not in html and "p4ss" not in row.error


def test_a_host_in_notify_allowed_hosts_is_sent_to_on_that_port_only(ml_model, hook, settings):
    settings.NOTIFY_ALLOWED_HOSTS = [("127.0.0.1", hook.port + 1 if hook.port < 65535 else 1)]
    _, refused = send_once(ml_model, hook.url())
    assert refused.status == NotificationStatus.FAILED and "loopback" in refused.error and hook.requests == []

    settings.NOTIFY_ALLOWED_HOSTS = [("127.0.0.1", hook.port)]
    _, sent = send_once(ml_model, hook.url(), name="second")
    assert (sent.status, sent.error) == (NotificationStatus.SENT, "")
    assert [path for path, _ in hook.received] == ["/hooks/s3cr3t-t0ken"]


def test_a_stored_webhook_is_sent_with_post_only_and_without_its_headers_or_query_arguments(ml_model, hook, settings):
    settings.NOTIFY_ALLOWED_HOSTS = [("127.0.0.1", None)]
    url = f"json://127.0.0.1:{hook.port}/containers/create?method=DELETE&+X-Registry-Auth=evil&-force=1"
    _, row = send_once(ml_model, url)
    assert row.status == NotificationStatus.SENT
    ((method, path, headers),) = hook.requests
    assert (method, path) == ("POST", "/containers/create")
    assert "X-Registry-Auth" not in headers and "evil" not in str(headers)


def test_a_redirect_is_not_followed(ml_model, settings):
    inside = Hook()
    outside = Hook(status=307, location=f"http://127.0.0.1:{inside.port}/secret-place")
    try:
        settings.NOTIFY_ALLOWED_HOSTS = [("127.0.0.1", outside.port)]  # the one the URL names, not the other
        job = make_job(ml_model, make_schedule(ml_model, urls=[outside.url()]))
        signals.job_ended.send(sender=BatchJob, job_id=job.pk, status=JobStatus.FAILED)
        (row,) = job.notifications.all()
        notify.notifications_send([row.pk], attempt=3)
        row.refresh_from_db()
        assert [m for m, _, _ in outside.requests] == ["POST"]
        assert inside.requests == []
        assert row.status == NotificationStatus.FAILED and "error=307" in row.error
    finally:
        inside.close()
        outside.close()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://files.example.com/x", "the scheme ftp:// is not one notifications use; use one of mailto://, "),
        ("https://hooks.slack.com/services/A/B/C", "the scheme https:// is not one notifications use"),
        ("json://127.0.0.1:2375/containers/create?method=POST", "the address 127.0.0.1 is a loopback address"),
        ("json://169.254.169.254/latest/meta-data/?method=GET", "it asks for method=GET: webhooks are sent with POST"),
        ("jsons://hooks.example.com/x?method=PUT", "it asks for method=PUT"),
        ("json://hooks.example.com/x?+Authorization=Bearer%20x", "it adds headers (+Name=value) or query arguments"),
        ("xml://hooks.example.com/x?-token=1", "it adds headers (+Name=value) or query arguments"),
        ("json://[fd00::1]/x", "the address fd00::1 is a private address"),
        ("mailtos://u:pw@example.com?smtp=10.0.0.2&to=ops@example.com", "the address 10.0.0.2 is a private address"),
    ],
)
def test_saving_a_schedule_refuses_a_url_naming_notify_urls_and_the_rule(api, ready, url, why):
    urls = ["json://hooks.example.com/ok", url]
    response = api.post("/api/v1/schedules/", {**BODY, "notify_urls": urls}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["notify_urls"]
    (message,) = errors["notify_urls"]
    assert message.startswith(f"notify_urls: URL 2 ({notify.mask_url(url)}) is refused: {why}")
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "json://hooks.example.com/x",
        "jsons://hooks.example.com/x?method=post",
        "json://8.8.8.8/x",
        "mailtos://me:app-password@gmail.com?to=ops@example.com",
        "slack://TokenA/TokenB/TokenC/#channel",
        "ntfys://ntfy.example.com/topic",
        "tgram://123456789:AAbbCCdd/12345",
        "workflows://prod-01.westus.logic.azure.com:443/WorkflowID/Signature/",
        "discord://1234567890/webhook-token",
    ],
)
def test_saving_a_schedule_accepts_the_listed_schemes_with_public_or_named_hosts(api, ready, url):
    response = api.post("/api/v1/schedules/", {**BODY, "notify_urls": [url]}, format="json")
    assert response.status_code == 201, response.json()
    assert Schedule.objects.get().notify_urls == [url]


def test_an_allowed_internal_host_can_be_saved(api, ready, settings):
    settings.NOTIFY_ALLOWED_HOSTS = [("10.0.0.7", 8443)]
    url = "jsons://10.0.0.7:8443/hooks/x"
    assert api.post("/api/v1/schedules/", {**BODY, "notify_urls": [url]}, format="json").status_code == 201
    other_port = {**BODY, "name": "other", "notify_urls": ["jsons://10.0.0.7:9443/hooks/x"]}
    assert api.post("/api/v1/schedules/", other_port, format="json").status_code == 400


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("::ffff:127.0.0.1", "a loopback address"),  # an IPv4 address written as IPv6
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("93.184.215.14", ""),
    ],
)
def test_an_address_is_public_or_says_what_it_is(host, kind):
    why = notify_guard.address_refusal(host, 80, resolve=False)
    assert why == (f"the address {ipaddress.ip_address(host)} is {kind}: {ALLOWED}." if kind else "")


def test_notify_allowed_hosts_reads_hosts_and_ports_and_refuses_a_malformed_one(monkeypatch):
    monkeypatch.setenv("NOTIFY_ALLOWED_HOSTS", "Hooks.Internal:8443, 10.0.0.7, [::1]:80, fd00::2")
    assert env_host_ports("NOTIFY_ALLOWED_HOSTS") == [
        ("hooks.internal", 8443),
        ("10.0.0.7", None),
        ("::1", 80),
        ("fd00::2", None),
    ]
    monkeypatch.setenv("NOTIFY_ALLOWED_HOSTS", "hooks.internal:http")
    with pytest.raises(ImproperlyConfigured, match="NOTIFY_ALLOWED_HOSTS: 'hooks.internal:http' is not a host"):
        env_host_ports("NOTIFY_ALLOWED_HOSTS")
