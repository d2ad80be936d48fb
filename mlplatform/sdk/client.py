"""A small Python client for the REST API (standard library only), for notebooks and pipelines.

    from mlplatform.sdk import BatchPredictor
    platform = BatchPredictor("https://ml.example.com", token="...")   # or MLPLATFORM_URL / _TOKEN
    job = platform.trigger("ds-premium-fraud-detection", "prod.s.input", "prod.s.scores")
    job = platform.wait(job["job_id"])          # raises BatchJobFailed unless it succeeded

or in one call: ``invoke_batch_predict_model(model_id, input_table, output_table)``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

TERMINAL = {"succeeded", "failed", "cancelled"}


class ApiError(Exception):
    """The API refused a request; ``errors`` is its {"field": ["sentence", ...]} object."""

    def __init__(self, status: int, errors: dict[str, list[str]]) -> None:
        self.status = status
        self.errors = errors
        lines = [f"{field}: {message}" for field, messages in errors.items() for message in messages]
        super().__init__(f"HTTP {status}: " + "; ".join(lines))


class BatchJobFailed(Exception):
    """The job ended without succeeding; ``job`` is its last state (message, batches...)."""

    def __init__(self, job: dict) -> None:
        self.job = job
        super().__init__(f"batch job {job['job_id']} {job['status']}: {job.get('message', '')}")


class BatchPredictor:
    def __init__(self, base_url: str | None = None, token: str | None = None, *, timeout: float = 60) -> None:
        base_url = base_url or os.environ.get("MLPLATFORM_URL", "")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("give the platform's http(s) URL, or set MLPLATFORM_URL")
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.token = token if token is not None else os.environ.get("MLPLATFORM_TOKEN", "")
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict | None = None, query: dict | None = None):
        url = urllib.parse.urljoin(self.base, path)
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v not in (None, "")})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s), checked
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                payload = response.read()
        except urllib.error.HTTPError as exc:
            try:
                errors = json.loads(exc.read()).get("errors", {})
            except ValueError:
                errors = {"detail": [exc.reason]}
            raise ApiError(exc.code, errors) from None
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

    # jobs
    def check(self, model_id: str, input_table: str, output_table: str) -> dict:
        body = {"model_id": model_id, "input_table": input_table, "output_table": output_table}
        return self._request("POST", "batch-jobs/check/", body)

    def trigger(self, model_id: str, input_table: str, output_table: str) -> dict:
        body = {"model_id": model_id, "input_table": input_table, "output_table": output_table}
        return self._request("POST", "batch-jobs/", body)

    def job(self, job_id: str) -> dict:
        return self._request("GET", f"batch-jobs/{job_id}/")

    def jobs(
        self,
        model_id: str | None = None,
        status: str | None = None,
        *,
        requested_by: str | None = None,
        since: str | None = None,
        job_id: str | None = None,
        most: int | None = None,
    ) -> list[dict]:
        """Jobs, newest first, filtered like the board (`since` is a date, `job_id` may be the start
        of an id); at most `most` of them (None: every one)."""
        query = {"model_id": model_id, "status": status, "requested_by": requested_by, "since": since, "job_id": job_id}
        return self._all("batch-jobs/", query, most)

    def cancel(self, job_id: str) -> dict:
        return self._request("POST", f"batch-jobs/{job_id}/cancel/")

    def retry(self, job_id: str) -> dict:
        return self._request("POST", f"batch-jobs/{job_id}/retry/")

    def batches(self, job_id: str) -> list[dict]:
        return self._all(f"batch-jobs/{job_id}/batches/")

    def logs(self, job_id: str, batch: int | None = None) -> list[dict]:
        return self._all(f"batch-jobs/{job_id}/logs/", {"batch": batch})

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

    # models and tables
    def models(self) -> list[dict]:
        return self._all("models/")

    def model(self, model_id: str) -> dict:
        return self._request("GET", f"models/{model_id}/")

    def tables(self, catalog: str | None = None, schema: str | None = None) -> list[dict]:
        return self._request("GET", "tables/", query={"catalog": catalog, "schema": schema})

    def table(self, name: str) -> dict:
        return self._request("GET", f"tables/{name}/")

    def rows(self, name: str, limit: int = 50) -> dict:
        return self._request("GET", f"tables/{name}/rows/", query={"limit": limit})


def invoke_batch_predict_model(
    model_id: str,
    input_table: str,
    output_table: str,
    *,
    base_url: str | None = None,
    token: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
) -> dict:
    """Trigger a batch prediction job and (by default) wait for it: the job as the API shows it."""
    client = BatchPredictor(base_url, token)
    job = client.trigger(model_id, input_table, output_table)
    return client.wait(job["job_id"], timeout=timeout) if wait else job
