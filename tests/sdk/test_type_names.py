"""Type names in a schema: the platform's own and the warehouse's and pandas's as aliases, kept as
written; a prediction's type is its column's Arrow type, a feature's is only shown."""

import datetime

import pandas as pd
import pyarrow as pa
import pytest

from mlplatform.sdk import ContractError, Feature, Model, ModelSchema, Prediction, check_model, check_schema
from mlplatform.sdk.contract import predictions_table, sample_frame
from mlplatform.sdk.schema import arrow_type, arrow_type_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("int", pa.int64()),
        ("float", pa.float64()),
        ("str", pa.string()),
        ("bool", pa.bool_()),
        ("datetime", pa.timestamp("us")),
        ("varchar", pa.string()),
        ("VARCHAR(255)", pa.string()),
        ("text", pa.string()),
        ("boolean", pa.bool_()),
        ("Boolean", pa.bool_()),
        ("bigint", pa.int64()),
        ("integer", pa.int32()),
        ("smallint", pa.int16()),
        ("real", pa.float32()),
        ("double", pa.float64()),
        ("DOUBLE PRECISION", pa.float64()),
        ("timestamp", pa.timestamp("us")),
        ("timestamp with time zone", pa.timestamp("us", tz="UTC")),
        ("date", pa.date32()),
        ("string", pa.string()),
        ("int64", pa.int64()),
        ("int32", pa.int32()),
        ("float64", pa.float64()),
        ("float32", pa.float32()),
        ("object", pa.string()),
    ],
)
def test_a_prediction_may_use_the_warehouse_or_pandas_type_names(name, expected):
    schema = ModelSchema([Feature("amount")], [Prediction("p", name)])
    assert check_schema(schema) == []
    assert arrow_type(arrow_type_name(name)) == expected
    assert schema.to_dict()["predictions"] == [{"name": "p", "type": name}]  # as written, not rewritten


def test_an_unknown_prediction_type_is_refused_listing_the_accepted_names():
    errors = check_schema(ModelSchema([Feature("amount")], [Prediction("is_fraud", "flag")]))
    assert len(errors) == 1
    assert errors[0].startswith(
        "prediction 'is_fraud' has type 'flag', which the platform does not know; the accepted types (any case) "
        "are: int, float, str, bool, datetime, "
    )
    for name in ("varchar", "boolean", "bigint", "integer", "real", "double", "timestamp", "date", "string", "object"):
        assert f" {name}," in errors[0]


@pytest.mark.parametrize("name", ["array<double>", "decimal(10,2)", "whatever", "struct<a:int>", ""])
def test_a_feature_type_is_only_shown_whatever_it_says(name):
    schema = ModelSchema([Feature("history", name)], [Prediction("p", "float")])
    assert check_schema(schema) == []
    assert schema.to_dict()["features"] == [{"name": "history", "type": name}]


def test_sample_rows_follow_alias_types_and_unknown_ones_get_numbers_with_a_note():
    schema = ModelSchema(
        [Feature("n", "INTEGER"), Feature("r", "real"), Feature("s", "varchar"), Feature("d", "date"),
         Feature("h", "array<double>")],
        [Prediction("p")],
    )  # fmt: skip
    frame = sample_frame(schema, rows=3)
    assert (str(frame["n"].dtype), str(frame["r"].dtype)) == ("int32", "float32")
    assert frame["s"].tolist() == ["value_0", "value_1", "value_2"]
    assert frame["d"].tolist()[0] == datetime.date(2024, 1, 1)
    assert frame["h"].tolist() == [1.0, 50.5, 100.0]

    class Reader(Model):
        def schema(self):
            return schema

        def predict(self, df):
            return pd.DataFrame({"p": df["r"].astype(float)}, index=df.index)

    report = check_model(Reader())
    assert any("numbers for 'h'" in note and "sample file" in note for note in report.notes), report.notes


def _table(values: dict, types: dict) -> pa.Table:
    schema = ModelSchema([Feature("x")], [Prediction(name, t) for name, t in types.items()])
    return predictions_table(pd.DataFrame(values), schema)


def test_predictions_take_the_arrow_type_of_their_declared_type():
    table = _table(
        {
            "is_fraud": [True, False],
            "label": ["a", "b"],
            "code": pd.Series(["x", "y"], dtype=object),
            "count": [1, 2],
            "small": [3, 4],
            "ratio": [0.5, 0.25],
            "day": pd.to_datetime(["2024-05-01", "2024-05-02"]),
        },
        {
            "is_fraud": "boolean",
            "label": "varchar",
            "code": "object",
            "count": "int64",
            "small": "integer",
            "ratio": "real",
            "day": "date",
        },
    )
    assert [str(f.type) for f in table.schema] == ["bool", "string", "string", "int64", "int32", "float", "date32[day]"]
    assert table.to_pylist()[1] == {
        "is_fraud": False,
        "label": "b",
        "code": "y",
        "count": 2,
        "small": 4,
        "ratio": 0.25,
        "day": datetime.date(2024, 5, 2),
    }


@pytest.mark.parametrize(
    ("values", "type_name", "message"),
    [
        (["yes", "no"], "boolean", r"'p' cannot be stored as its declared type 'boolean' \(bool\)"),
        ([2**40, 1], "integer", r"'p' cannot be stored as its declared type 'integer' \(int32\)"),
        ([0.5, 1.5], "bigint", r"'p' cannot be stored as its declared type 'bigint' \(int64\)"),
    ],
)
def test_a_prediction_that_does_not_fit_its_declared_type_is_refused_naming_both(values, type_name, message):
    with pytest.raises(ContractError, match=message):
        _table({"p": values}, {"p": type_name})
