"""Each batch try's captured log, shipped to CloudWatch Logs in one stream per job and batch
(`<job_id>/batch-00007`), and links to it in the AWS console.

Off unless both AWS_REGION and CLOUDWATCH_LOG_GROUP are set. Credentials and endpoints come from
boto3's usual sources (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_LOGS included).
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from urllib.parse import quote

import boto3
from botocore.config import Config
from django.conf import settings

logger = logging.getLogger(__name__)

# PutLogEvents limits: events per call, bytes per call (each event costs its UTF-8 message plus 26).
MAX_CALL_EVENTS = 10_000
MAX_CALL_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD

# Shipping runs in the worker after each batch: short timeouts, one retry, and after a failure a
# pause, so an unreachable CloudWatch costs seconds once, not on every batch (the logs stay in-app).
_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 2})
PAUSE_S = 300.0
_paused_until = 0.0


def enabled() -> bool:
    return bool(settings.AWS_REGION and settings.CLOUDWATCH_LOG_GROUP)


def stream_name(job_id, index: int) -> str:
    return f"{job_id}/batch-{index:05d}"


def _encode(value: str) -> str:
    """The console's escaping after `#logsV2:`: URL-quoted, then each '%' written '$25'."""
    return quote(value, safe="").replace("%", "$25")


def console_url(region: str, group: str, stream: str | None = None, stream_prefix: str | None = None) -> str:
    """The console page of a log group, of one stream's events, or of the group's streams whose
    names start with stream_prefix."""
    if stream is not None and stream_prefix is not None:
        raise ValueError("give a stream or a stream prefix, not both")
    url = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{_encode(group)}"
    )
    if stream is not None:
        return f"{url}/log-events/{_encode(stream)}"
    if stream_prefix is not None:
        return f"{url}$3FlogStreamNameFilter$3D{_encode(stream_prefix)}"
    return url


def batch_url(job_id, index: int) -> str | None:
    if not enabled():
        return None
    return console_url(settings.AWS_REGION, settings.CLOUDWATCH_LOG_GROUP, stream=stream_name(job_id, index))


def job_url(job_id) -> str | None:
    if not enabled():
        return None
    return console_url(settings.AWS_REGION, settings.CLOUDWATCH_LOG_GROUP, stream_prefix=f"{job_id}/")


@functools.cache
def _client(region: str):
    """One client per region for this process (tests reset it with `_client.cache_clear()`)."""
    return boto3.client("logs", region_name=region, config=_CONFIG)


def _pieces(line: str) -> Iterator[str]:
    """The line in events of at most MAX_EVENT_BYTES, never splitting a character."""
    data = line.encode("utf-8", errors="replace")
    while len(data) > MAX_EVENT_BYTES:
        cut = MAX_EVENT_BYTES
        while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character
            cut -= 1
        yield data[:cut].decode()
        data = data[cut:]
    yield data.decode()


def _messages(header: str, log: str) -> Iterator[str]:
    yield header
    lines = [line for line in log.splitlines() if line]  # CloudWatch refuses empty messages
    if not lines:
        yield "[platform] the batch printed nothing"
    for line in lines:
        yield from _pieces(line)


def _calls(messages: Iterable[str]) -> Iterator[list[str]]:
    """Messages grouped into PutLogEvents calls within the per-call limits."""
    call: list[str] = []
    size = 0
    for message in messages:
        cost = len(message.encode()) + EVENT_OVERHEAD
        if call and (len(call) == MAX_CALL_EVENTS or size + cost > MAX_CALL_BYTES):
            yield call
            call, size = [], 0
        call.append(message)
        size += cost
    if call:
        yield call


def ship_batch_log(
    *, job_id, index: int, attempt: int, log: str, started_at: datetime, finished_at: datetime | None = None
) -> bool:
    """Append one batch try's log to its stream. True when shipped; False (and a warning) on any
    failure, which never reaches the caller: the batch's outcome does not depend on CloudWatch."""
    global _paused_until
    group, stream = settings.CLOUDWATCH_LOG_GROUP, stream_name(job_id, index)
    if time.monotonic() < _paused_until:
        logger.info("not shipping %s: CloudWatch Logs failed less than %.0f s ago", stream, PAUSE_S)
        return False
    header = f"[platform] attempt {attempt} on {socket.gethostname()}, started {started_at.isoformat()}"
    if finished_at is not None:
        header += f", took {(finished_at - started_at).total_seconds():.1f} s"
    timestamp = int(started_at.timestamp() * 1000)
    try:
        client = _client(settings.AWS_REGION)
        try:
            client.create_log_stream(logGroupName=group, logStreamName=stream)
        except client.exceptions.ResourceAlreadyExistsException:
            pass
        except client.exceptions.ResourceNotFoundException:  # the group itself is missing
            try:
                client.create_log_group(logGroupName=group)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
            client.create_log_stream(logGroupName=group, logStreamName=stream)
        for call in _calls(_messages(header, log)):
            response = client.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": timestamp, "message": message} for message in call],
            )
            if response.get("rejectedLogEventsInfo"):
                logger.warning(
                    "CloudWatch Logs rejected events of %s in %s: %s", stream, group, response["rejectedLogEventsInfo"]
                )
                return False
    except Exception as exc:  # botocore errors, missing credentials, the network: all the same here
        _paused_until = time.monotonic() + PAUSE_S
        logger.warning(
            "could not ship the log of %s to CloudWatch Logs group %s (pausing shipping for %.0f s): %s",
            stream,
            group,
            PAUSE_S,
            exc,
        )
        return False
    return True
