"""The Python client against a live server (real HTTP on 127.0.0.1, token auth)."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from mlplatform.sdk import ApiError, BatchJobFailed, BatchPredictor
from tests.batchjobs.jobkit import make_input, model_with_config

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.usefixtures("job_storage")]


@pytest.fixture
def client(live_server, ml_model, user):
    model_with_config(ml_model, user)
    make_input("prod.t.input", 1_000)
    return BatchPredictor(live_server.url, token=Token.objects.create(user=user).key, timeout=30)


def test_the_client_checks_triggers_follows_and_cancels_a_job(client):
    assert client.check("ds-premium-fraud-detection", "prod.t.input", "prod.out.c")["input_rows"] == 1_000
    job = client.trigger("ds-premium-fraud-detection", "prod.t.input", "prod.out.c")
    assert job["status"] in {"queued", "running"} and job["output_table"] == "prod.out.c"
    assert [j["job_id"] for j in client.jobs(model_id="ds-premium-fraud-detection")] == [job["job_id"]]
    assert [j["job_id"] for j in client.jobs(job_id=job["job_id"][:8], requested_by="alice")] == [job["job_id"]]
    assert client.jobs(requested_by="nobody") == []
    client.cancel(job["job_id"])
    with pytest.raises(BatchJobFailed) as ended:
        client.wait(job["job_id"], poll=0.2, timeout=60)
    assert ended.value.job["status"] == "cancelled"
    assert client.model("ds-premium-fraud-detection")["active_batch_config"]["deployment_name"] == "test-batch"
    assert client.rows("prod.t.input", limit=2)["columns"] == ["id", "amount", "country"]


def test_the_client_raises_the_apis_errors_by_field(client):
    with pytest.raises(ApiError) as refused:
        client.trigger("ds-premium-fraud-detection", "prod.t.missing", "Bad Name")
    assert refused.value.status == 400
    assert refused.value.errors["input_table"] == ["The input table prod.t.missing does not exist."]
    assert "output_table" in refused.value.errors
    with pytest.raises(ApiError) as hidden:
        client.job("00000000-0000-0000-0000-000000000000")
    assert hidden.value.status == 404


def test_a_wrong_token_is_refused(live_server, db):
    with pytest.raises(ApiError) as refused:
        BatchPredictor(live_server.url, token="nope").models()
    assert refused.value.status in (401, 403)


def test_read_table_refuses_a_limit_the_server_would_refuse_before_asking_it(client, user):
    assert client.read_table("prod.t.input", limit=1)["id"].tolist() == [0]
    for limit in (0, -1, 1.5, True):
        with pytest.raises(ValueError) as refused:
            client.read_table("prod.t.input", limit=limit)
        rule = "limit must be a whole number of at least 1 (leave it out for every row)"
        assert str(refused.value) == f"{rule}, not {limit!r}"
    # The server's own rule, in the same words.
    api = APIClient()
    api.force_authenticate(user)
    answer = api.get("/api/v1/tables/prod.t.input/download/", {"format": "parquet", "limit": "0"})
    assert (answer.status_code, answer.json()) == (400, {"errors": {"limit": [f"{rule}."]}})
