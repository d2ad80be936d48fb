"""Notifications about a scheduled job, to its schedule's Apprise URLs (email, Slack, Teams, webhooks).

The receivers of ``job_ended`` and ``post_step_failed`` only write one ``Notification`` row per URL
and send a task; the task sends them (Apprise, a short timeout, two more tries with a backoff) and
records each result on its row. Nothing here touches the job: a notification that cannot be sent
is a failed notification, never a failed job.

A URL's secrets stay in the schedule: rows, pages, the API and logs get ``mask_url``'s form, and
Apprise's own log (which names URLs in full) is captured, redacted and kept off the process's log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from batchjobs import dispatch, notify_guard
from batchjobs.choices import EventId, JobStatus, NotificationStatus, NotifyOn
from batchjobs.models import BatchJob, Notification, PostStep

logger = logging.getLogger(__name__)

FAILED, CANCELLED, SUCCEEDED, POST_STEP_FAILED = "failed", "cancelled", "succeeded", "post_step_failed"
# How each reason reads in a title, and its Apprise notify type (the colour or icon some services show).
REASONS = {
    FAILED: ("failed", "failure"),
    CANCELLED: ("was cancelled", "warning"),
    SUCCEEDED: ("succeeded", "success"),
    POST_STEP_FAILED: ("succeeded, but a post-step failed", "failure"),
}
TRIES = 3  # the first send and two retries
ERROR_CAP = 2000
MASK = "****"


# --- what is shown of a URL ------------------------------------------------------------------


# Schemes whose "host" is a server's name (json://host, mailto://user@host), not a token as in
# slack://TokenA/…: only these keep it when shown. A fixed list, so the receivers never load Apprise's
# plugins (a second); tests check Apprise agrees for each. Any other scheme shows as `scheme://…`.
SERVER_SCHEMES = frozenset(
    """json jsons xml xmls form forms mailto mailtos apprise apprises ntfy ntfys gotify gotifys
    matrix matrixs mmost mmosts rocket rockets nctalk nctalks""".split()
)


def _hostname_is_an_address(scheme: str) -> bool:
    return scheme in SERVER_SCHEMES


def mask_url(url: str) -> str:
    """Scheme, host and port, and nothing else: no user, password, path, query or fragment, and no
    host either when the scheme puts a token there. `slack://A/B/C/#c` → `slack://…`."""
    try:
        parts = urlsplit(str(url).strip())
        scheme = parts.scheme.lower()
        host, port = parts.hostname, parts.port
    except ValueError:  # a malformed port, an unclosed [ of an IPv6 address
        return "(an unreadable URL)"
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,31}", scheme):
        return "(an unreadable URL)"
    if not host or not _hostname_is_an_address(scheme):
        return f"{scheme}://…"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}{f':{port}' if port else ''}/…"[:255]


def _secrets(url: str) -> list[str]:
    """Every part of a URL that `mask_url` leaves out, longest first (as written and decoded)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port, as mask_url finds it
    except ValueError:
        return [url]
    # The host as written (`hostname` lowercases it, and a token's case matters in a log line).
    host = parts.netloc.rpartition("@")[2]
    host = host.rpartition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    credentials = {parts.username or "", parts.password or ""}
    if not _hostname_is_an_address(parts.scheme.lower()):
        credentials.add(host)
    pieces = {parts.fragment, *parts.path.split("/")}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        pieces.update((key, value))
    # Very short pieces of a path or query (a "to", a "1") are no secret, and masking them would
    # garble every message; a user, password or token is masked from two characters.
    found = {s for s in credentials | {unquote(c) for c in credentials} if len(s) >= 2}
    found |= {s for s in pieces | {unquote(p) for p in pieces} if len(s) >= 3}
    return sorted(found, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, MASK)
    return text


# --- the message ----------------------------------------------------------------------------


def job_page_url(job_id) -> str:
    return settings.PUBLIC_URL + reverse("batchjobs:job-detail", args=[job_id])


def first_line(text: str) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def message_for(job: BatchJob, reason: str, why: str) -> tuple[str, str]:
    """The title and body of a notification: the model, the schedule, the job, the reason, the link."""
    words, _ = REASONS[reason]
    schedule = job.schedule.name if job.schedule else "—"
    title = f"{job.model.model_id}: scheduled run {schedule} {words}"[:255]
    label = "Result" if reason == SUCCEEDED else "Reason"
    body = "\n".join(
        [
            f"Model: {job.model.model_id}",
            f"Schedule: {schedule}",
            f"Job: {job.pk}",
            f"Status: {job.get_status_display()}",
            f"{label}: {why or 'no reason was recorded'}",
            f"Job page: {job_page_url(job.pk)}",
        ]
    )
    return title, body


# --- writing the rows (the receivers) --------------------------------------------------------


def notifications_create(*, job: BatchJob, reason: str, why: str, occurrence: str = "") -> list[int]:
    """One pending notification per URL of the job's schedule, and a task to send them. A reason
    already notified for this occurrence (a redelivered signal) makes nothing: the rows exist; the
    same reason again later (failed again after a retry: a new event) is a new occurrence."""
    urls = list(job.schedule.notify_urls or []) if job.schedule else []
    if not urls:
        return []
    title, body = message_for(job, reason, why)
    created = []
    for index, url in enumerate(urls):
        try:
            with transaction.atomic():
                row, made = Notification.objects.get_or_create(
                    job=job,
                    reason=reason,
                    url_index=index,
                    occurrence=occurrence,
                    defaults={"url_shown": mask_url(url), "title": title, "body": body},
                )
        except IntegrityError:  # another receiver of the same signal made it just now
            continue
        if made:
            created.append(row.pk)
    if created:
        dispatch.send_notifications(created)
    return created


def reason_for_end(status: str, notify_on: str) -> str | None:
    """Which notification a job's end makes: a failure always; a success or a cancellation only
    for schedules that notify always (a cancellation is a person's act: they know of it)."""
    if status == JobStatus.FAILED:
        return FAILED
    if notify_on != NotifyOn.ALWAYS:
        return None
    return {JobStatus.SUCCEEDED: SUCCEEDED, JobStatus.CANCELLED: CANCELLED}.get(status)


# The event each reason is recorded with; its uuid tells one occurrence of a reason from the next.
EVENT_OF = {FAILED: EventId.FAILURE, SUCCEEDED: EventId.SUCCESS, POST_STEP_FAILED: EventId.POST_STEP_FAILURE}


def occurrence_of(job: BatchJob, reason: str, occurrence) -> str:
    """The signal's event uuid; for a sender that gave none, the job's latest event of the reason."""
    if occurrence:
        return str(occurrence)
    evid = EVENT_OF.get(reason)
    latest = job.events.filter(evid=evid).order_by("-date_created", "-id").first() if evid else None
    return str(latest.uuid) if latest else ""


def on_job_ended(sender=None, *, job_id, status, occurrence="", **kwargs) -> None:
    try:
        job = BatchJob.objects.select_related("model", "schedule").filter(pk=job_id).first()
        if job is None or job.schedule is None:
            return
        reason = reason_for_end(status, job.schedule.notify_on)
        if reason:
            occurrence = occurrence_of(job, reason, occurrence)
            notifications_create(job=job, reason=reason, why=first_line(job.message), occurrence=occurrence)
    except Exception:  # a receiver never fails what sent the signal
        logger.exception("could not record the notifications of job %s", job_id)


def on_post_step_failed(sender=None, *, job_id, step_id=None, error="", occurrence="", **kwargs) -> None:
    try:
        job = BatchJob.objects.select_related("model", "schedule").filter(pk=job_id).first()
        if job is None or job.schedule is None:
            return
        step = PostStep.objects.filter(pk=step_id, job=job).first() if step_id else None
        what = f"{step.get_kind_display()} ({step.target})" if step and step.target else None
        what = what or (step.get_kind_display() if step else "A post-step")
        why = f"{what} failed: {first_line(str(error)) or 'no error was recorded'}"
        occurrence = occurrence_of(job, POST_STEP_FAILED, occurrence)
        notifications_create(job=job, reason=POST_STEP_FAILED, why=why, occurrence=occurrence)
    except Exception:  # a receiver never fails what sent the signal
        logger.exception("could not record the post-step notifications of job %s", job_id)


# --- sending (the task) -----------------------------------------------------------------------


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def apprise_log() -> Iterator[_Captured]:
    """Apprise's log while it sends, kept here and off the process's log (it names URLs in full)."""
    apprise_logger = logging.getLogger("apprise")
    handler = _Captured()
    level, propagate = apprise_logger.level, apprise_logger.propagate
    apprise_logger.addHandler(handler)
    apprise_logger.setLevel(logging.DEBUG)
    apprise_logger.propagate = False
    try:
        yield handler
    finally:
        apprise_logger.removeHandler(handler)
        apprise_logger.setLevel(level)
        apprise_logger.propagate = propagate


def _why_it_failed(records: list[logging.LogRecord]) -> str:
    """Apprise's warnings and errors (a status line: "…: Internal Server Error, error=500."), with
    the exception behind a connection error ("… Connection refused"). Never the "Response Details"
    (the answer's body): a URL's owner would read what its server answered on the job page."""
    lines = [r.getMessage().strip() for r in records if r.levelno >= logging.WARNING or _is_socket_error(r)]
    return " — ".join(" ".join(line.split()) for line in lines if line)


def _is_socket_error(record: logging.LogRecord) -> bool:
    return record.getMessage().startswith("Socket Exception")


def deliver(url: str, *, title: str, body: str, notify_type: str) -> tuple[str, bool]:
    """Send one message to one Apprise URL: ("", False) when it went, else why not (redacted) and
    whether another try could help (a refused URL or address is never sent, so never tried again)."""
    import apprise

    # A refusal names a scheme, a host and its addresses: nothing mask_url hides as a secret.
    refused = notify_guard.scheme_refusal(url)
    if refused:
        return f"Not sent: {refused}"[:ERROR_CAP], False
    with apprise_log() as captured:
        try:
            service = apprise.Apprise.instantiate(url)
            if service is None:
                ok = False
            else:
                refused = notify_guard.send_refusal(service)
                if refused:
                    return f"Not sent: {refused}"[:ERROR_CAP], False
                # A short wait on each connect and read, whatever the URL or the plugin's default says.
                service.socket_connect_timeout = min(service.socket_connect_timeout, settings.NOTIFY_TIMEOUT_S)
                service.socket_read_timeout = min(service.socket_read_timeout, settings.NOTIFY_TIMEOUT_S)
                ok = service.notify(title=title, body=body, notify_type=notify_type)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is this notification's failure
            return redact(f"{type(exc).__name__}: {exc}", url)[:ERROR_CAP], True
    if ok:
        return "", False
    why = _why_it_failed(captured.records)
    if service is None:
        why = f"Apprise cannot use this URL: {why or 'its scheme or form is not one it knows'}"
        return redact(why, url)[:ERROR_CAP], False
    return redact(why or "Apprise reported a failure without a reason.", url)[:ERROR_CAP], True


def _mark(notification_id: int, status: str, *, error: str = "") -> int:
    """Pending → sent or failed, once (a conditional UPDATE: a redelivered task changes nothing)."""
    sent_at = timezone.now() if status == NotificationStatus.SENT else None
    return Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING).update(
        status=status, error=error, sent_at=sent_at
    )


def _url_of(notification: Notification) -> str | None:
    """The URL a notification goes to, while the schedule still lists it at its place."""
    schedule = notification.job.schedule
    urls = list(schedule.notify_urls or []) if schedule else []
    if notification.url_index >= len(urls):
        return None
    url = str(urls[notification.url_index])
    return url if mask_url(url) == notification.url_shown else None


def notification_send(notification_id: int, *, attempt: int = 1) -> bool:
    """Send one pending notification; True when it is done (sent, failed for good, or not pending),
    False when it failed and should be tried again (its error says so meanwhile)."""
    notification = (
        Notification.objects.select_related("job__schedule")
        .filter(pk=notification_id, status=NotificationStatus.PENDING)
        .first()
    )
    if notification is None:
        return True
    url = _url_of(notification)
    if url is None:
        changed = "The schedule's notification URLs changed before it was sent."
        _mark(notification_id, NotificationStatus.FAILED, error=changed)
        return True
    _, notify_type = REASONS.get(notification.reason, ("", "info"))
    error, worth_retrying = deliver(url, title=notification.title, body=notification.body, notify_type=notify_type)
    url_shown = notification.url_shown
    if not error:
        _mark(notification_id, NotificationStatus.SENT)
        logger.info("notification %s of job %s sent to %s", notification_id, notification.job_id, url_shown)
        return True
    last = attempt >= TRIES or not worth_retrying
    logger.warning(
        "notification %s of job %s to %s failed (try %d of %d): %s",
        notification.pk,
        notification.job_id,
        notification.url_shown,
        attempt,
        TRIES,
        error,
    )
    if last:
        _mark(notification_id, NotificationStatus.FAILED, error=error)
        return True
    # Still pending; the page says what went wrong so far and that it will try again.
    Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING).update(
        error=f"Try {attempt} of {TRIES} failed, trying again: {error}"[:ERROR_CAP]
    )
    return False


def notifications_send(notification_ids: list[int], *, attempt: int = 1) -> list[int]:
    """Send each; the ids to try again later."""
    return [pk for pk in notification_ids if not notification_send(pk, attempt=attempt)]


def retry_delay(attempt: int) -> int:
    """Seconds before try `attempt + 1`: NOTIFY_RETRY_S, then twice that."""
    return settings.NOTIFY_RETRY_S * 2 ** (attempt - 1)
