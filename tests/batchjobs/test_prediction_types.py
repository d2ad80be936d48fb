"""Schemas in the type names users bring (the warehouse's, pandas's): a build verifies, its page and
API show the names as written, and its job's output table has each prediction in the Arrow type of
its declared type. A feature's type never fails anything. And the model's own local checks stay
off inside the platform: the platform checks each batch once."""

import decimal

import pyarrow as pa
import pytest
from django.urls import reverse

from batchjobs.choices import JobStatus
from builds.choices import BuildStatus
from builds.models import InstanceType
from builds.services import batch_config_set, build_register
from builds.verification import build_verify
from tables import selectors as table_selectors
from tests.artifacts import source_zip, upload
from tests.batchjobs.jobkit import make_input, output_rows, run_job, trigger

pytestmark = pytest.mark.usefixtures("job_storage")

TYPED_MODEL = """
import pandas as pd
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

class Scorer(Model):
    def schema(self):
        return ModelSchema(
            [Feature("amount", "DOUBLE"), Feature("country", "integer"), Feature("history", "array<double>"),
             Feature("price", "decimal(10,2)"), Feature("extra", "whatever")],
            [Prediction("is_fraud", "boolean"), Prediction("band", "varchar"), Prediction("tag", "string"),
             Prediction("units", "int64"), Prediction("ratio", "real"), Prediction("seen_on", "Date")],
        )

    def predict(self, df):
        return pd.DataFrame(
            {
                "is_fraud": df["amount"] > 50,
                "band": ["high" if a > 50 else "low" for a in df["amount"]],
                "tag": pd.Series(["t"] * len(df), dtype=object, index=df.index),
                "units": (df["amount"] // 1).astype("int64"),
                "ratio": df["amount"] / 4,
                "seen_on": pd.Timestamp("2024-05-01"),
            },
            index=df.index,
        )
"""


def register(ml_model, user, code: str):
    build = build_register(
        model=ml_model, upload=upload(source_zip(code)), filename="m.zip", entrypoint="scorer:Scorer", created_by=user
    )
    build_verify(build_id=build.id)
    build.refresh_from_db()
    return build


def activate(build, user):
    return batch_config_set(
        build=build,
        deployment_name="typed-batch",
        set_by=user,
        processes="ALL",
        instance_type=InstanceType.objects.get(name="ml.m5.large"),
        env={},
        allow_network=False,
    )


def test_a_build_in_warehouse_type_names_writes_predictions_of_those_types(ml_model, user, web, api):
    build = register(ml_model, user, TYPED_MODEL)
    assert build.status == BuildStatus.SUCCEEDED, build.log
    assert build.schema["features"] == [
        {"name": "amount", "type": "DOUBLE"},
        {"name": "country", "type": "integer"},
        {"name": "history", "type": "array<double>"},
        {"name": "price", "type": "decimal(10,2)"},
        {"name": "extra", "type": "whatever"},
    ]
    assert [(p["name"], p["type"]) for p in build.schema["predictions"]] == [
        ("is_fraud", "boolean"),
        ("band", "varchar"),
        ("tag", "string"),
        ("units", "int64"),
        ("ratio", "real"),
        ("seen_on", "Date"),
    ]
    assert "Note: the sample rows hold numbers for 'history', 'price', 'extra'" in build.log

    # What users see: the names as they wrote them (and what an output column is stored as).
    assert api.get(f"/api/v1/builds/{build.id}/").json()["schema"] == build.schema
    page = web.get(reverse("builds:build-detail", args=[build.id])).content.decode()
    for shown in ("<td>DOUBLE</td>", "<td>array&lt;double&gt;</td>", "<td>decimal(10,2)</td>", "<td>whatever</td>"):
        assert shown in page
    assert "<td>boolean <span" in page and "→ bool</span>" in page and "<td>real <span" in page

    # Input columns of types no schema name stands for, and a feature typed unlike its column.
    activate(build, user)
    rows = 2_500
    make_input(
        "prod.t.typed",
        rows,
        extra={
            "history": pa.array([[float(i), 0.5] for i in range(rows)], pa.list_(pa.float64())),
            "price": pa.array([decimal.Decimal(f"{i % 100}.25") for i in range(rows)], pa.decimal128(10, 2)),
            "extra": pa.array([{"k": i} for i in range(rows)], pa.struct([("k", pa.int64())])),
        },
    )
    job = run_job(trigger(ml_model, user, "prod.t.typed", "prod.out.typed"))
    assert job.status == JobStatus.SUCCEEDED, job.message

    catalog, name = table_selectors.resolve("prod.out.typed")
    schema = catalog.arrow_schema(name)
    assert {f.name: str(f.type) for f in schema} == {
        "id": "int64",
        "amount": "double",
        "country": "string",  # the schema said integer: only shown
        "history": "list<element: double>",
        "price": "decimal128(10, 2)",
        "extra": "struct<k: int64>",
        "is_fraud": "bool",
        "band": "string",
        "tag": "string",
        "units": "int64",
        "ratio": "float",
        "seen_on": "date32[day]",
    }
    out = output_rows("prod.out.typed")
    assert [r["id"] for r in out] == list(range(rows))
    row = out[60]  # amount 60.5
    assert (row["is_fraud"], row["band"], row["tag"], row["units"], row["ratio"]) == (True, "high", "t", 60, 15.125)
    assert str(row["seen_on"]) == "2024-05-01" and row["price"] == decimal.Decimal("60.25")
    assert (out[1]["is_fraud"], out[1]["band"], out[1]["units"]) == (False, "low", 1)


def test_an_unknown_prediction_type_fails_verification_listing_the_accepted_names(ml_model, user):
    code = TYPED_MODEL.replace('Prediction("ratio", "real")', 'Prediction("ratio", "float128")')
    build = register(ml_model, user, code)
    assert build.status == BuildStatus.FAILED
    assert (
        "FAILED rule: prediction 'ratio' has type 'float128', which the platform does not know; "
        "the accepted types (any case) are: int, float, str, bool, datetime, bigint, "
    ) in build.log
    assert "varchar" in build.log.split("FAILED rule:")[1] and build.schema is None


# A model that records, in its output, how often the platform's output check (contract.check_output)
# ran in its process before its batch: the platform checks a batch with two calls (the batch, the
# few rows of the row-order check), so a model process's batches see 0, 2, 4, ...; were its own local
# checks also run, they would see 0, 4, 8, ... It keeps what it recorded for the row-order check's
# second call on a few rows of the same batch (small: under 10 rows), so that the check holds.
COUNTING_MODEL = """
import os
import pandas as pd
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction, contract

CALLS = []
_original = contract.check_output


def counting(*args, **kwargs):
    CALLS.append(1)
    return _original(*args, **kwargs)


class Scorer(Model):
    def __init__(self):
        contract.check_output = counting
        self.seen = 0

    def schema(self):
        return ModelSchema([Feature("amount", "double")], [Prediction("score", "double"),
                           Prediction("checks_before", "bigint"), Prediction("pid", "integer")])

    def predict(self, df):
        if len(df) >= 10:
            self.seen = len(CALLS)
        return pd.DataFrame({"score": df["amount"] * 2, "checks_before": self.seen, "pid": os.getpid()},
                            index=df.index)
"""


def test_inside_a_job_each_batch_is_checked_once_not_again_by_the_models_own_checks(ml_model, user):
    build = register(ml_model, user, COUNTING_MODEL)
    assert build.status == BuildStatus.SUCCEEDED, build.log
    activate(build, user)
    make_input("prod.t.counted", 6_000)
    job = run_job(trigger(ml_model, user, "prod.t.counted", "prod.out.counted"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.batches_total == 6
    seen: dict[int, set[int]] = {}
    for row in output_rows("prod.out.counted"):
        seen.setdefault(row["pid"], set()).add(row["checks_before"])
    for counts in seen.values():  # per model process, one value per batch it ran
        assert sorted(counts) == list(range(0, 2 * len(counts), 2)), seen
    assert sum(len(c) for c in seen.values()) == 6
