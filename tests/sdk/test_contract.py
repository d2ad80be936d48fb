import pandas as pd
import pytest

from mlplatform.sdk import (
    ContractError,
    Feature,
    Model,
    ModelSchema,
    Prediction,
    check_model,
    check_output,
    check_schema,
    sample_frame,
)

SCHEMA = ModelSchema([Feature("amount", "float"), Feature("country", "str")], [Prediction("score", "float")])


def test_a_good_schema_has_no_errors():
    assert check_schema(SCHEMA) == []


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (ModelSchema([Feature("Amount")], [Prediction("score")]), "feature name 'Amount' breaks the naming rule"),
        (ModelSchema([Feature("a b")], [Prediction("score")]), "feature name 'a b' breaks the naming rule"),
        (ModelSchema([Feature("amount")], []), "at least one prediction is required"),
        (ModelSchema([Feature("x"), Feature("x")], [Prediction("p")]), "'x' is used twice"),
        (ModelSchema([Feature("x")], [Prediction("x")]), "'x' is both a feature and a prediction"),
        (
            ModelSchema([Feature("x")], [Prediction("p", "float128")]),
            "prediction 'p' has type 'float128', which the platform does not know; the accepted types",
        ),
        ({"features": []}, "must return a mlplatform.sdk.ModelSchema, not dict"),
    ],
)
def test_it_names_the_rule_a_schema_breaks(schema, expected):
    errors = check_schema(schema)
    assert any(expected in e for e in errors), errors


def test_sample_rows_have_every_feature_with_its_type():
    schema = ModelSchema(
        [
            Feature("i", "int"),
            Feature("f", "float"),
            Feature("s", "str"),
            Feature("b", "bool"),
            Feature("d", "datetime"),
        ],
        [Prediction("p")],
    )
    frame = sample_frame(schema, rows=4)
    assert list(frame.columns) == ["i", "f", "s", "b", "d"]
    assert len(frame) == 4
    assert frame["i"].dtype == "int64" and frame["b"].dtype == bool
    assert pd.api.types.is_datetime64_any_dtype(frame["d"])


def _batch(n=4):
    return pd.DataFrame({"amount": [float(i) for i in range(n)], "country": ["us"] * n})


def test_output_with_the_batch_index_is_kept_in_order_and_extra_columns_are_dropped():
    batch = _batch()
    out = pd.DataFrame({"score": [0.0, 1.0, 2.0, 3.0], "debug": 1}, index=batch.index)
    predictions, notes = check_output(batch, out, SCHEMA)
    assert list(predictions.columns) == ["score"]
    assert predictions["score"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert any("dropped" in n for n in notes)


def test_a_permuted_index_is_realigned_to_the_batch():
    batch = _batch().set_axis([10, 11, 12, 13])
    out = pd.DataFrame({"score": [13.0, 11.0, 12.0, 10.0]}, index=[13, 11, 12, 10])
    predictions, notes = check_output(batch, out, SCHEMA)
    assert predictions.index.tolist() == [10, 11, 12, 13]
    assert predictions["score"].tolist() == [10.0, 11.0, 12.0, 13.0]
    assert any("realigned" in n for n in notes)


def test_a_fresh_positional_index_is_taken_as_the_batch_order():
    batch = _batch().set_axis([10, 11, 12, 13])
    out = pd.DataFrame({"score": [1.0, 2.0, 3.0, 4.0]})
    predictions, _ = check_output(batch, out, SCHEMA)
    assert predictions.index.tolist() == [10, 11, 12, 13]
    assert predictions["score"].tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ([1, 2, 3, 4], "returned list, not a pandas DataFrame"),
        (pd.DataFrame({"score": [1.0, 2.0, 3.0]}), "returned 3 rows for a batch of 4 rows"),
        (pd.DataFrame({"other": [1.0] * 4}), "lacks the prediction column 'score'"),
        (pd.DataFrame({"score": [1.0] * 4}, index=[7, 8, 9, 10]), "neither the batch's index"),
    ],
)
def test_it_refuses_output_that_breaks_the_contract(output, message):
    with pytest.raises(ContractError, match=message):
        check_output(_batch(), output, SCHEMA)


def test_it_refuses_a_row_over_the_byte_limit():
    out = pd.DataFrame({"score": ["x" * 50, "y"]})
    schema = ModelSchema([Feature("amount")], [Prediction("score", "str")])
    with pytest.raises(ContractError, match="row of 50 bytes .*row 0.* limit is 10 bytes"):
        check_output(_batch(2), out, schema, max_row_bytes=10)


def test_check_model_runs_the_whole_contract_locally():
    class Doubler(Model):
        def schema(self):
            return SCHEMA

        def predict(self, df):
            return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)

    report = check_model(Doubler())
    assert report.rows == 5
    assert report.schema.prediction_names == ["score"]


class Shuffler(Model):
    """Shuffles its rows and gives them a fresh index: looks aligned, is not."""

    def __init__(self, deterministic: bool = True) -> None:
        self.deterministic = deterministic

    def schema(self):
        return ModelSchema([Feature("amount", "float")], [Prediction("score", "float")], self.deterministic)

    def predict(self, df):
        shuffled = df.sample(frac=1, random_state=7).reset_index(drop=True)
        return pd.DataFrame({"score": shuffled["amount"] * 2})


def test_rows_shuffled_and_reindexed_are_caught_by_the_row_order_check():
    with pytest.raises(ContractError, match="came back in another order than its input rows"):
        check_model(Shuffler(), pd.DataFrame({"amount": [float(i) for i in range(20)]}))


def test_the_check_catches_them_when_nearly_every_prediction_is_alike():
    class RareFlags(Shuffler):
        def predict(self, df):
            shuffled = df.sample(frac=1, random_state=7).reset_index(drop=True)
            return pd.DataFrame({"score": (shuffled["amount"] == 3).astype(float)})  # one row of 20 is 1

    with pytest.raises(ContractError, match="another order"):
        check_model(RareFlags(), pd.DataFrame({"amount": [float(i) for i in range(20)]}))


def test_a_model_declared_not_deterministic_skips_the_check_and_says_so():
    report = check_model(Shuffler(deterministic=False), pd.DataFrame({"amount": [1.0, 2.0, 3.0]}))
    assert "the row-order check was skipped" in " ".join(report.notes)
    assert ModelSchema.from_dict(Shuffler(deterministic=False).schema().to_dict()).deterministic is False


class SizeAware(Model):
    """Doubles the amount, plus `drift(rows in the call)`: what the row-order check compares
    between the whole batch's call and its few rows called alone."""

    def __init__(self, drift) -> None:
        self.drift = drift

    def schema(self):
        return ModelSchema([Feature("amount", "float")], [Prediction("score", "float")])

    def predict(self, df):
        return pd.DataFrame({"score": df["amount"] * 2 * (1 + self.drift(len(df)))}, index=df.index)


AMOUNTS = pd.DataFrame({"amount": [1000.0 + i for i in range(20)]})


def test_predictions_that_differ_by_float_noise_between_the_calls_pass_the_row_order_check():
    # A relative 1e-12 per row of the call, as summing in another order gives: ~2.6e-8 apart here.
    report = check_model(SizeAware(lambda rows: 1e-12 * rows), AMOUNTS)
    assert report.rows == 20
    assert not any("skipped" in note for note in report.notes)


def test_predictions_that_depend_on_the_calls_size_fail_the_row_order_check():
    with pytest.raises(ContractError, match="came back in another order than its input rows") as refused:
        check_model(SizeAware(lambda rows: 1e-3 * rows), AMOUNTS)
    assert "alone, " in str(refused.value) and "in the batch" in str(refused.value)
