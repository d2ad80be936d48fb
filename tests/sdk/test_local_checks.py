"""predict() of a Model subclass, called off the platform (a laptop, a notebook), checks the batch
rules the platform checks on every batch, once, and raises ContractError naming the rule."""

import pickle
import re

import cloudpickle
import pandas as pd
import pytest

from mlplatform.sdk import ContractError, Feature, Model, ModelSchema, Prediction, check_model, contract
from mlplatform.sdk import local_checks_off as checks_off

SCHEMA = ModelSchema([Feature("amount", "double"), Feature("country", "varchar")], [Prediction("score", "real")])


def rows(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"amount": [float(i) for i in range(n)], "country": ["us", "gb"] * (n // 2)})


class Good(Model):
    def schema(self):
        return SCHEMA

    def predict(self, df):
        return pd.DataFrame({"score": df["amount"] * 2, "debug": "kept"}, index=df.index)


def model(body, schema=SCHEMA) -> Model:
    class Custom(Model):
        def schema(self):
            return schema

        def predict(self, df):
            return body(df)

    return Custom()


@pytest.fixture
def counted(monkeypatch):
    """How many times the platform's output check ran."""
    calls = []
    original = contract.check_output

    def counting(*args, **kwargs):
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(contract, "check_output", counting)
    return calls


def test_a_good_model_returns_the_frame_its_predict_returns(counted):
    df = rows()
    out = Good().predict(df)
    assert out.equals(Good.predict.__wrapped__(Good(), df))  # the author's own method, still reachable
    assert list(out.columns) == ["score", "debug"] and out["score"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert counted == [6, 6]  # the batch once, then the few rows of the row-order check


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda df: pd.DataFrame({"score": df["amount"]}).iloc[:-2], "predict() returned 4 rows for a batch of 6 rows"),
        (lambda df: pd.DataFrame({"other": df["amount"]}), "predict() output lacks the prediction column 'score'"),
        (lambda df: df["amount"], "predict() returned Series, not a pandas DataFrame"),
        (
            lambda df: pd.DataFrame({"score": df["amount"].sample(frac=1, random_state=3).to_numpy()}),
            "came back in another order than its input rows",
        ),
        (
            lambda df: pd.DataFrame({"score": ["high"] * len(df)}),
            "'score' cannot be stored as its declared type 'real'",
        ),
    ],
)
def test_a_model_breaking_a_batch_rule_raises_naming_it(body, message):
    with pytest.raises(ContractError, match=re.escape(message)):
        model(body).predict(rows())


def test_an_uppercase_prediction_name_raises_naming_the_rule():
    schema = ModelSchema([Feature("amount")], [Prediction("Score")])
    with pytest.raises(ContractError, match="prediction name 'Score' breaks the naming rule: lowercase letters"):
        model(lambda df: pd.DataFrame({"Score": df["amount"]}), schema).predict(rows())


def test_rows_without_a_feature_column_raise_before_the_model_runs():
    ran = []
    with pytest.raises(ContractError, match="predict\\(\\) got rows without the feature column 'country' declared"):
        model(lambda df: ran.append(1)).predict(rows().drop(columns="country"))
    assert ran == []


def test_a_row_over_the_byte_limit_raises(monkeypatch):
    monkeypatch.setattr(contract, "MAX_ROW_BYTES", 100)
    schema = ModelSchema([Feature("amount")], [Prediction("note", "string")])
    with pytest.raises(ContractError, match="row of 500 bytes .* the limit is 100 bytes per row"):
        model(lambda df: pd.DataFrame({"note": ["x" * 500] * len(df)}, index=df.index), schema).predict(rows())


def test_checks_run_once_through_super_and_check_model(counted):
    class Child(Good):
        def predict(self, df):
            out = super().predict(df)
            return out.assign(score=out["score"] + 1)

    assert Child().predict(rows())["score"].tolist()[:2] == [1.0, 3.0]
    assert counted == [6, 6]
    counted.clear()
    check_model(Child())  # the platform's own check: its predict() calls do not check again
    assert counted == [5, 5]


def test_checks_are_off_inside_the_platform_and_when_asked(counted, monkeypatch):
    with checks_off():
        model(lambda df: df.iloc[:1]).predict(rows())  # breaks a rule, unchecked
    monkeypatch.setattr(contract, "_in_platform_process", True)  # what the model process sets
    model(lambda df: df.iloc[:1]).predict(rows())
    assert counted == []


def test_a_pickled_model_checks_once_after_loading(counted):
    loaded = pickle.loads(pickle.dumps(Good()))  # noqa: S301 - our own bytes
    assert loaded.predict(rows())["score"].tolist()[1] == 2.0
    assert counted == [6, 6]
    bad = cloudpickle.loads(cloudpickle.dumps(model(lambda df: df.iloc[:1])))  # its class pickled by value
    with pytest.raises(ContractError, match="returned 1 rows for a batch of 6 rows"):
        bad.predict(rows())
    assert counted == [6, 6, 6]
