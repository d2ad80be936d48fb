"""The demo model: a scikit-learn pipeline (one-hot + scaling + logistic regression)."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

from .data import BOOLEAN, CATEGORICAL, FEATURES, NUMERIC, generate

WEIGHTS = Path(__file__).with_name("model.joblib")
TYPES = {
    **{n: "float" for n in ("amount", "avg_amount_30d")},
    **{n: "int" for n in ("account_age_days", "hour_of_day", "num_prev_transactions")},
    **{n: "str" for n in CATEGORICAL},
    **{n: "bool" for n in BOOLEAN},
}


def train(path: Path = WEIGHTS, rows: int = 20_000, seed: int = 7) -> Path:
    """Fit the pipeline on synthetic data and save it next to this file."""
    data = generate(rows, seed=seed)
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                        ("numbers", StandardScaler(), NUMERIC + BOOLEAN),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=500)),
        ]
    )
    pipeline.fit(data[FEATURES], data["label"])
    joblib.dump(pipeline, path)
    return path


class FraudModel(Model):
    def __init__(self) -> None:
        if not WEIGHTS.exists():
            train()
        self.pipeline = joblib.load(WEIGHTS)
        # Set from the batch config's environment variables.
        self.threshold = float(os.environ.get("FRAUD_THRESHOLD", "0.5"))

    def schema(self) -> ModelSchema:
        return ModelSchema(
            features=[Feature(name, TYPES[name]) for name in FEATURES],
            predictions=[Prediction("fraud_probability", "float"), Prediction("is_fraud", "bool")],
        )

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        probability = self.pipeline.predict_proba(df[FEATURES])[:, 1]
        return pd.DataFrame(
            {"fraud_probability": probability, "is_fraud": probability >= self.threshold}, index=df.index
        )
