"""Batch logs shipped to CloudWatch Logs (moto's in-process mock: nothing leaves this process but a
connection to a closed port on 127.0.0.1), and links to them in the AWS console."""

import logging
import time
import uuid

import boto3
import pytest
from django.utils import timezone
from moto import mock_aws

from batchjobs import cloudwatch
from batchjobs.choices import JobStatus
from batchjobs.models import Batch
from batchjobs.services import job_trigger
from tests.batchjobs.jobkit import make_input, model_with_config, run_job

REGION, GROUP = "us-east-1", "/mlplatform/batch-jobs"
JOB = uuid.UUID("0b7e4b3c-5a1f-4d2e-9c3b-8f6a2d1e7c40")


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch, tmp_path):
    """Fake credentials, no profile or endpoint from the machine, and a fresh client per test."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LOGS", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(cloudwatch, "_paused_until", 0.0)
    cloudwatch._client.cache_clear()
    yield
    cloudwatch._client.cache_clear()


@pytest.fixture
def logs(settings):
    """CloudWatch Logs (moto) with the platform's log group, and the settings that turn shipping on."""
    settings.AWS_REGION, settings.CLOUDWATCH_LOG_GROUP = REGION, GROUP
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName=GROUP)
        yield client


def messages(client, stream: str) -> list[str]:
    """Every message of the stream, oldest first, over as many pages as it takes."""
    found, token = [], None
    while True:
        page = client.get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True, **({"nextToken": token} if token else {})
        )
        found += [event["message"] for event in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return found
        token = page["nextForwardToken"]


def ship(log: str, *, index: int = 7, attempt: int = 1) -> bool:
    return cloudwatch.ship_batch_log(
        job_id=JOB, index=index, attempt=attempt, log=log, started_at=timezone.now(), finished_at=timezone.now()
    )


# --- console links ------------------------------------------------------------------------------


def test_console_urls_are_the_ones_the_console_itself_makes():
    # A stream page copied from the console (https://qiita.com/yoohya/items/3ef1124ae9dd945e3b9f):
    # '/', '[', '$' and ']' of the group and stream all written URL-quoted with '%' as '$25'.
    assert cloudwatch.console_url(
        "ap-northeast-1", "/aws/lambda/hoge-lambda", stream="2020/10/27/[$LATEST]542bf48a98944249b069342e12861b99"
    ) == (
        "https://ap-northeast-1.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-1"
        "#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fhoge-lambda"
        "/log-events/2020$252F10$252F27$252F$255B$2524LATEST$255D542bf48a98944249b069342e12861b99"
    )
    # The same page's group (the article takes the URL apart: fixed part, group, /log-events/, stream).
    assert cloudwatch.console_url("ap-northeast-1", "/aws/lambda/hoge-lambda") == (
        "https://ap-northeast-1.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-1"
        "#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fhoge-lambda"
    )
    # A group's streams filtered by name prefix, as ZenML links a SageMaker pipeline run's logs
    # (zenml-io/zenml, src/zenml/integrations/aws/orchestrators/sagemaker_orchestrator.py).
    assert cloudwatch.console_url("us-east-1", "/aws/sagemaker/ProcessingJobs", stream_prefix="pipelines-a1b2c3-") == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FProcessingJobs$3FlogStreamNameFilter$3Dpipelines-a1b2c3-"
    )


def test_console_urls_of_a_batch_stream_and_of_a_jobs_streams():
    base = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/"
    stream = cloudwatch.stream_name(JOB, 7)
    assert stream == f"{JOB}/batch-00007"
    assert cloudwatch.console_url("eu-west-1", "/aws/batch/job") == base + "$252Faws$252Fbatch$252Fjob"
    assert cloudwatch.console_url("eu-west-1", "/aws/batch/job", stream=stream) == (
        base + f"$252Faws$252Fbatch$252Fjob/log-events/{JOB}$252Fbatch-00007"
    )
    assert cloudwatch.console_url("eu-west-1", "/aws/batch/job", stream_prefix=f"{JOB}/") == (
        base + f"$252Faws$252Fbatch$252Fjob$3FlogStreamNameFilter$3D{JOB}$252F"
    )
    with pytest.raises(ValueError):
        cloudwatch.console_url("eu-west-1", "/aws/batch/job", stream=stream, stream_prefix=f"{JOB}/")


def test_batch_and_job_urls_exist_only_when_region_and_group_are_both_set(settings):
    settings.AWS_REGION, settings.CLOUDWATCH_LOG_GROUP = "", ""
    assert not cloudwatch.enabled()
    assert cloudwatch.batch_url(JOB, 7) is None and cloudwatch.job_url(JOB) is None
    settings.AWS_REGION = REGION
    assert cloudwatch.batch_url(JOB, 7) is None and cloudwatch.job_url(JOB) is None
    settings.CLOUDWATCH_LOG_GROUP = GROUP
    assert cloudwatch.enabled()
    base = f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logsV2:log-groups/log-group/"
    group = "$252Fmlplatform$252Fbatch-jobs"
    assert cloudwatch.batch_url(JOB, 7) == f"{base}{group}/log-events/{JOB}$252Fbatch-00007"
    assert cloudwatch.job_url(JOB) == f"{base}{group}$3FlogStreamNameFilter$3D{JOB}$252F"


# --- shipping -----------------------------------------------------------------------------------


def test_a_log_arrives_line_by_line_in_its_batchs_stream_after_a_header(logs):
    assert ship("loading\nscored 1,000 rows\n\n  done  \n", attempt=2) is True
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]]
    assert streams == [f"{JOB}/batch-00007"]
    shipped = messages(logs, f"{JOB}/batch-00007")
    assert shipped[0].startswith("[platform] attempt 2 on ")
    assert shipped[1:] == ["loading", "scored 1,000 rows", "  done  "]  # the empty line is left out


def test_a_second_attempt_is_appended_to_the_same_stream(logs):
    assert ship("first try")
    assert ship("second try", attempt=2)
    shipped = messages(logs, f"{JOB}/batch-00007")
    assert [m for m in shipped if not m.startswith("[platform]")] == ["first try", "second try"]
    assert [m.split(" on ")[0] for m in shipped if m.startswith("[platform]")] == [
        "[platform] attempt 1",
        "[platform] attempt 2",
    ]


def test_a_log_over_1_mib_ships_completely_in_calls_within_the_limits(logs, monkeypatch):
    client = cloudwatch._client(REGION)
    calls = []
    put = client.put_log_events
    monkeypatch.setattr(client, "put_log_events", lambda **kw: calls.append(kw["logEvents"]) or put(**kw))
    lines = [f"row {i:06d} " + "x" * 90 for i in range(12_000)]  # about 1.5 MB with the per-event overhead
    assert ship("\n".join(lines))
    assert len(calls) >= 2
    for events in calls:
        assert len(events) <= 10_000
        assert sum(len(e["message"].encode()) + 26 for e in events) <= 1_048_576
    assert messages(logs, f"{JOB}/batch-00007")[1:] == lines


def test_a_line_over_256_kib_is_split_without_breaking_a_character(logs):
    line = "é" * 200_000  # 400,000 bytes
    assert ship(f"before\n{line}\nafter")
    shipped = messages(logs, f"{JOB}/batch-00007")[1:]
    assert len(shipped) == 4 and shipped[0] == "before" and shipped[-1] == "after"
    assert all(len(m.encode()) + 26 <= 256 * 1024 for m in shipped)
    assert "".join(shipped[1:3]) == line


def test_an_empty_log_ships_one_event_saying_so(logs):
    assert ship("")
    shipped = messages(logs, f"{JOB}/batch-00007")
    assert len(shipped) == 2 and shipped[1] == "[platform] the batch printed nothing"


def test_a_missing_log_group_is_created(logs):
    logs.delete_log_group(logGroupName=GROUP)
    assert ship("hello")
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == [GROUP]
    assert messages(logs, f"{JOB}/batch-00007")[1:] == ["hello"]


def test_an_unreachable_endpoint_gives_false_and_a_warning_not_an_error(settings, monkeypatch, caplog):
    settings.AWS_REGION, settings.CLOUDWATCH_LOG_GROUP = REGION, GROUP
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with caplog.at_level(logging.WARNING, logger="batchjobs.cloudwatch"):
        assert ship("lost") is False
    [record] = [r for r in caplog.records if r.name == "batchjobs.cloudwatch"]
    assert record.levelno == logging.WARNING
    assert f"{JOB}/batch-00007" in record.getMessage() and "127.0.0.1:9" in record.getMessage()
    # Shipping pauses: the next batches do not each wait on the dead endpoint.
    started = time.monotonic()
    assert ship("next") is False and time.monotonic() - started < 0.1


# --- in a job -----------------------------------------------------------------------------------

PRINTS = (
    "if \"id\" in df: print(f\"scoring ids {df['id'].min()} to {df['id'].max()}\")\n"
    '        return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)'
)


@pytest.mark.usefixtures("job_storage")
def test_a_jobs_batch_logs_arrive_in_one_stream_per_batch(logs, ml_model, user):
    model_with_config(ml_model, user, PRINTS, processes="ONE")
    make_input("prod.t.input", 2_500)
    job = job_trigger(model=ml_model, input_table="prod.t.input", output_table="prod.out.cw", requested_by=user)
    job = run_job(job)
    assert job.status == JobStatus.SUCCEEDED, job.message
    batches = Batch.objects.filter(job=job).count()
    assert batches >= 2
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]]
    assert sorted(streams) == [f"{job.pk}/batch-{i:05d}" for i in range(batches)]
    first = messages(logs, f"{job.pk}/batch-00000")
    assert first[0].startswith("[platform] attempt 1 on ")
    assert "scoring ids 0 to " in "\n".join(first)
    assert cloudwatch.job_url(job.pk).endswith(f"$3FlogStreamNameFilter$3D{job.pk}$252F")
