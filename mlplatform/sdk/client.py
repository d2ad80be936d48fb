"""A small Python client for the REST API, for notebooks and pipelines. Standard library only;
pandas and pyarrow are imported by ``read_table`` and ``upload_table`` (of a DataFrame) alone.

The call users of the managed platform already have (URL and token from ``base_url=``/``token=`` or
the variables MLPLATFORM_URL and MLPLATFORM_TOKEN)::

    from mlplatform.sdk import invoke_batch_predict_model
    predictor_config, batch_predictor = invoke_batch_predict_model(
        model_id="ds-premium-fraud-detection",
        input_table_name="prod.fraud_in_premium_model.input",
        output_table_name="prod.fraud_in_premium_model.output",
    )  # waits; BatchJobFailed, or OutputRowCountMismatch when the output's rows differ from the input's

or step by step::

    platform = BatchPredictor("https://ml.example.com", token="...")
    platform.prepare(model_id, input_name, output_name, drop_existing_output=True)
    predictor_config = platform.invoke(model_id, input_name, output_name)
    scores = platform.read_table(output_name)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = {"succeeded", "failed", "cancelled"}
CHUNK = 1024 * 1024
SPOOL_BYTES = 64 * 1024 * 1024  # a downloaded table larger than this waits in a temporary file, not memory


class ApiError(Exception):
    """The API refused a request; ``errors`` is its {"field": ["sentence", ...]} object."""

    def __init__(self, status: int, errors: dict[str, list[str]]) -> None:
        self.status = status
        self.errors = errors
        lines = [f"{field}: {message}" for field, messages in errors.items() for message in messages]
        super().__init__(f"HTTP {status}: " + "; ".join(lines))


class BatchPredictionError(Exception):
    """A batch prediction did not leave the complete output table it was asked for."""


class BatchJobFailed(BatchPredictionError):
    """The job ended without succeeding; ``job`` is its last state (message, batches...)."""

    def __init__(self, job: dict) -> None:
        self.job = job
        super().__init__(f"batch job {job['job_id']} {job['status']}: {job.get('message', '')}")


class OutputRowCountMismatch(BatchPredictionError):
    """The job succeeded, but its output table does not hold one row per input row (counted afterwards)."""

    def __init__(self, job: dict, input_rows: int | None, output_rows: int | None) -> None:
        self.job, self.input_rows, self.output_rows = job, input_rows, output_rows
        found = "could not be counted" if output_rows is None else f"has {output_rows:,} rows"
        expected = "an unknown number of" if input_rows is None else f"{input_rows:,}"
        super().__init__(
            f"batch job {job['job_id']} succeeded, but its output table {job['output_table']} {found} "
            f"where its input table {job['input_table']} had {expected} rows; see {job.get('url') or 'the job page'}"
        )


class OutputTableNotDropped(BatchPredictionError):
    """``prepare(..., drop_existing_output=True)`` could not drop the table at the output name."""

    def __init__(self, table: str, reasons: list[str]) -> None:
        self.table, self.reasons = table, reasons
        super().__init__(f"The earlier output table {table} was not dropped: {' '.join(reasons)}")


@dataclass(frozen=True)
class PredictorConfig:
    """What ran: the model, its build and that build's batch config (fields as the API gives them),
    the tables, and the job (its last state as the API gave it)."""

    model_id: str
    build_id: str
    build_number: int | None
    deployment_name: str
    instance_type: str
    processes: str
    env: dict[str, str]
    allow_network: bool
    input_table_name: str
    output_table_name: str
    job_id: str
    job: dict[str, Any] = field(repr=False)

    @property
    def url(self) -> str:
        """The job's page."""
        return self.job.get("url", "")


def _path(*parts: str) -> str:
    """An API path with each part quoted, so a name never changes which endpoint is called."""
    return "/".join(urllib.parse.quote(str(p), safe="") for p in parts) + "/"


def _multipart(fields: dict[str, str], filename: str, chunks: Iterable[bytes], size: int) -> tuple[Iterator, str, int]:
    """A multipart/form-data body (fields, then the file under "file") as a stream: body, type, length."""
    boundary = uuid.uuid4().hex
    filename = "".join("_" if c in '"\\\r\n' else c for c in filename)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from chunks
        yield tail

    return body(), f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


class BatchPredictor:
    def __init__(self, base_url: str | None = None, token: str | None = None, *, timeout: float = 60) -> None:
        base_url = base_url or os.environ.get("MLPLATFORM_URL", "")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("give the platform's http(s) URL, or set MLPLATFORM_URL")
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.token = token if token is not None else os.environ.get("MLPLATFORM_TOKEN", "")
        self.timeout = timeout

    @contextmanager
    def _open(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        data=None,
        headers: dict[str, str] | None = None,
    ):
        """The response to a request, to read; an HTTP error status raises ApiError with the API's errors."""
        url = urllib.parse.urljoin(self.base, path)
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v not in (None, "")})
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s), checked
        for name, value in {"Accept": "application/json", **(headers or {})}.items():
            request.add_header(name, value)
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - http(s) only
        except urllib.error.HTTPError as exc:
            try:
                errors = json.loads(exc.read()).get("errors", {})
            except ValueError:
                errors = {"detail": [exc.reason]}
            raise ApiError(exc.code, errors) from None
        with response:
            yield response

    def _request(self, method: str, path: str, body: dict | None = None, query: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._open(method, path, query=query, data=data, headers=headers) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def _all(self, path: str, query: dict | None = None, most: int | None = None) -> list[dict]:
        items, offset = [], 0
        while True:
            size = 100 if most is None else min(100, most - len(items))
            page = self._request("GET", path, query={**(query or {}), "limit": size, "offset": offset})
            items += page["results"]
            offset += len(page["results"])
            if not page.get("next") or not page["results"] or (most is not None and len(items) >= most):
                return items

    # the managed platform's calls
    def prepare(
        self, model_id: str, input_table_name: str, output_table_name: str, *, drop_existing_output: bool = False
    ) -> dict:
        """Run the pre-flight checks (the model's config, the input table, the output name) and, with
        ``drop_existing_output``, drop an earlier output table of yours at the output name first.

        Returns the check's answer (``input_rows``...) and ``dropped_output``. Raises ApiError when a
        check fails, OutputTableNotDropped when the table at the output name is not yours to drop.
        Nothing is dropped when the model or the input fails its checks."""
        try:
            return {**self.check(model_id, input_table_name, output_table_name), "dropped_output": False}
        except ApiError as exc:
            if not (drop_existing_output and exc.status == 400 and set(exc.errors) == {"output_table"}):
                raise
            found = exc.errors["output_table"]
        try:
            self.drop_table(output_table_name)
        except ApiError as exc:
            if exc.status == 404:  # another team's table, or a job of your team still writes the name
                raise OutputTableNotDropped(output_table_name, found) from None
            if exc.status == 403:  # a table the platform did not make, or that someone else made
                raise OutputTableNotDropped(output_table_name, [m for ms in exc.errors.values() for m in ms]) from None
            raise
        return {**self.check(model_id, input_table_name, output_table_name), "dropped_output": True}

    def invoke(
        self,
        model_id: str,
        input_table_name: str,
        output_table_name: str,
        *,
        wait: bool = True,
        timeout: float | None = None,
        poll: float = 2.0,
    ) -> PredictorConfig:
        """Trigger a job and (by default) wait for it, then count the output table's rows.

        Raises ApiError (a failed pre-flight check), BatchJobFailed, TimeoutError, or
        OutputRowCountMismatch. Without ``wait`` the job is returned as triggered, unchecked."""
        job = self.trigger(model_id, input_table_name, output_table_name)
        config = job["batch_config"]  # the config the job runs with
        if wait:
            job = self.wait(job["job_id"], poll=poll, timeout=timeout)
            self.check_output_rows(job)
        return PredictorConfig(
            model_id=job["model_id"],
            build_id=job["build_id"],
            build_number=job.get("build_number"),
            deployment_name=config["deployment_name"],
            instance_type=config["instance_type"],
            processes=config["processes"],
            env=config["env"],
            allow_network=config["allow_network"],
            input_table_name=job["input_table"],
            output_table_name=job["output_table"],
            job_id=job["job_id"],
            job=job,
        )

    def check_output_rows(self, job: dict) -> int:
        """Count the output table of a succeeded job: one row per input row the job read, or raise
        OutputRowCountMismatch naming the job, both counts and its page."""
        try:
            output_rows = self.table(job["output_table"]).get("rows")
        except ApiError as exc:
            if exc.status != 404:
                raise
            output_rows = None
        if output_rows is None or output_rows != job["input_rows"]:
            raise OutputRowCountMismatch(job, job["input_rows"], output_rows)
        return output_rows

    # jobs
    def check(self, model_id: str, input_table: str, output_table: str) -> dict:
        body = {"model_id": model_id, "input_table": input_table, "output_table": output_table}
        return self._request("POST", "batch-jobs/check/", body)

    def trigger(self, model_id: str, input_table: str, output_table: str) -> dict:
        body = {"model_id": model_id, "input_table": input_table, "output_table": output_table}
        return self._request("POST", "batch-jobs/", body)

    def job(self, job_id: str) -> dict:
        return self._request("GET", _path("batch-jobs", job_id))

    def jobs(
        self,
        model_id: str | None = None,
        status: str | None = None,
        *,
        requested_by: str | None = None,
        since: str | None = None,
        job_id: str | None = None,
        schedule_id: str | None = None,
        most: int | None = None,
    ) -> list[dict]:
        """Jobs, newest first, filtered like the board (`since` is a date, `job_id` may be the start
        of an id, `schedule_id` a schedule's runs); at most `most` of them (None: every one)."""
        query = {
            "model_id": model_id,
            "status": status,
            "requested_by": requested_by,
            "since": since,
            "job_id": job_id,
            "schedule_id": schedule_id,
        }
        return self._all("batch-jobs/", query, most)

    def cancel(self, job_id: str) -> dict:
        return self._request("POST", _path("batch-jobs", job_id, "cancel"))

    def retry(self, job_id: str) -> dict:
        return self._request("POST", _path("batch-jobs", job_id, "retry"))

    def batches(self, job_id: str) -> list[dict]:
        return self._all(_path("batch-jobs", job_id, "batches"))

    def logs(self, job_id: str, batch: int | None = None) -> list[dict]:
        return self._all(_path("batch-jobs", job_id, "logs"), {"batch": batch})

    def events(self, **filters) -> list[dict]:
        return self._all("events/", filters)

    def wait(self, job_id: str, *, poll: float = 2.0, timeout: float | None = None) -> dict:
        """Poll until the job ends; return it if it succeeded, else raise BatchJobFailed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in TERMINAL:
                if job["status"] != "succeeded":
                    raise BatchJobFailed(job)
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"batch job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(poll)

    # schedules
    def schedules(self, model_id: str | None = None) -> list[dict]:
        return self._all("schedules/", {"model_id": model_id})

    def schedule(self, schedule_id: str) -> dict:
        return self._request("GET", _path("schedules", schedule_id))

    def create_schedule(
        self,
        model_id: str,
        name: str,
        input_table: str,
        output_table_template: str,
        cron: str,
        timezone: str = "UTC",
        **options,
    ) -> dict:
        """A schedule that runs the model's active batch config at each due time of `cron` (five
        fields, in `timezone`) into `output_table_template` ({date}, {datetime}, {run} filled in).
        options: enabled, history_table, events_table, event_key_column, keep_last, notify_urls, notify_on."""
        body = {
            "model_id": model_id,
            "name": name,
            "input_table": input_table,
            "output_table_template": output_table_template,
            "cron": cron,
            "timezone": timezone,
            **options,
        }
        return self._request("POST", "schedules/", body)

    def update_schedule(self, schedule_id: str, **fields) -> dict:
        return self._request("PATCH", _path("schedules", schedule_id), fields)

    def pause_schedule(self, schedule_id: str) -> dict:
        return self._request("POST", _path("schedules", schedule_id, "pause"))

    def resume_schedule(self, schedule_id: str) -> dict:
        """Runs again from its next due time (the times passed while paused are not run)."""
        return self._request("POST", _path("schedules", schedule_id, "resume"))

    def run_schedule(self, schedule_id: str) -> dict:
        """Run now: the job it started (ApiError 409 while the schedule's previous run is active)."""
        return self._request("POST", _path("schedules", schedule_id, "run"))

    def delete_schedule(self, schedule_id: str) -> None:
        self._request("DELETE", _path("schedules", schedule_id))

    # models and tables
    def models(self) -> list[dict]:
        return self._all("models/")

    def model(self, model_id: str) -> dict:
        return self._request("GET", _path("models", model_id))

    def tables(self, catalog: str | None = None, schema: str | None = None) -> list[dict]:
        return self._request("GET", "tables/", query={"catalog": catalog, "schema": schema})

    def table(self, name: str) -> dict:
        """A table's name, columns and row count."""
        return self._request("GET", _path("tables", name))

    def rows(self, name: str, limit: int = 50) -> dict:
        return self._request("GET", _path("tables", name, "rows"), query={"limit": limit})

    def upload_table(self, name: str, dataframe_or_path) -> dict:
        """Create the table `name` from a pandas DataFrame (sent as Parquet) or a .csv/.parquet file
        (streamed from disk). Returns the new table (name, columns, rows, renamed_columns); ApiError
        409 when the name is taken."""
        if isinstance(dataframe_or_path, str | os.PathLike):
            path = Path(dataframe_or_path)
            filename, size, chunks = path.name, path.stat().st_size, _file_chunks(path)
        elif hasattr(dataframe_or_path, "to_parquet"):
            import io

            buffer = io.BytesIO()
            dataframe_or_path.to_parquet(buffer)  # needs pyarrow; a named or non-default index is kept as columns
            content = buffer.getvalue()
            filename, size, chunks = f"{name.rsplit('.', 1)[-1]}.parquet", len(content), [content]
        else:
            what = type(dataframe_or_path).__name__
            raise TypeError(f"upload a pandas DataFrame or the path of a .csv or .parquet file, not a {what}")
        body, content_type, length = _multipart({"name": name}, filename, chunks, size)
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        with self._open("POST", "tables/", data=body, headers=headers) as response:
            return json.loads(response.read())

    def read_table(self, name: str, limit: int | None = None):
        """The table as a pandas DataFrame, downloaded as Parquet: its first `limit` rows (a whole
        number of at least 1, as the server requires), or every row when `limit` is None."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValueError(f"limit must be a whole number of at least 1 (leave it out for every row), not {limit!r}")
        import pyarrow.parquet as pq

        query = {"format": "parquet", "limit": limit}
        with (
            self._open("GET", _path("tables", name, "download"), query=query, headers={"Accept": "*/*"}) as response,
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer,
        ):
            shutil.copyfileobj(response, buffer, CHUNK)
            buffer.seek(0)
            return pq.read_table(buffer).to_pandas()

    def drop_table(self, name: str) -> None:
        """Drop a table you may drop (yours or your team's); ApiError 404 for another team's, 403 for
        one you may read but not drop."""
        self._request("DELETE", _path("tables", name))


def _table_argument(name: str | None, alias: str | None, what: str) -> str:
    """The table name given under its managed-platform keyword (`input_table_name`) or ours (`input_table`)."""
    if name and alias and name != alias:
        raise TypeError(f"give {what}_name or {what}, not two different names")
    if not (name or alias):
        raise TypeError(f"invoke_batch_predict_model() needs {what}_name")
    return name or alias


def invoke_batch_predict_model(
    model_id: str,
    input_table_name: str | None = None,
    output_table_name: str | None = None,
    *,
    input_table: str | None = None,
    output_table: str | None = None,
    drop_existing_output: bool = False,
    base_url: str | None = None,
    token: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    poll: float = 2.0,
) -> tuple[PredictorConfig, BatchPredictor]:
    """Trigger a batch prediction job, wait for it and check its output has one row per input row.

    Returns ``(predictor_config, batch_predictor)``: what ran (the job's last state is
    ``predictor_config.job``) and the client used. ``input_table``/``output_table`` are accepted for
    ``input_table_name``/``output_table_name``. With ``drop_existing_output``, an earlier output table
    of yours at that name is dropped first (see ``BatchPredictor.prepare``)."""
    input_name = _table_argument(input_table_name, input_table, "input_table")
    output_name = _table_argument(output_table_name, output_table, "output_table")
    client = BatchPredictor(base_url, token)
    if drop_existing_output:
        client.prepare(model_id, input_name, output_name, drop_existing_output=True)
    return client.invoke(model_id, input_name, output_name, wait=wait, timeout=timeout, poll=poll), client
