"""40 float64 features, a StandardScaler + LogisticRegression pipeline; data from a fixed seed."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

WEIGHTS = Path(__file__).with_name("model.joblib")
FEATURES = [f"f{i:02d}" for i in range(40)]


def generate(rows: int, seed: int = 7, start_id: int = 0, label: bool = False) -> pd.DataFrame:
    """`rows` rows: an id and 40 float64 features (and, for training, a label)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (rows, len(FEATURES))) * np.linspace(1, 40, len(FEATURES))
    frame = pd.DataFrame(values, columns=FEATURES)
    frame.insert(0, "id", np.arange(start_id, start_id + rows, dtype=np.int64))
    if label:
        weights = np.sin(np.arange(len(FEATURES)))
        frame["label"] = (values / np.linspace(1, 40, len(FEATURES))) @ weights + rng.normal(0, 1, rows) > 0
    return frame


def train(path: Path = WEIGHTS, rows: int = 20_000, seed: int = 7) -> Path:
    data = generate(rows, seed=seed, label=True)
    pipeline = Pipeline([("scale", StandardScaler()), ("classifier", LogisticRegression(max_iter=500))])
    pipeline.fit(data[FEATURES], data["label"])
    joblib.dump(pipeline, path)
    return path


class WideModel(Model):
    def __init__(self) -> None:
        if not WEIGHTS.exists():
            train()
        self.pipeline = joblib.load(WEIGHTS)

    def schema(self) -> ModelSchema:
        return ModelSchema(
            features=[Feature(name, "float") for name in FEATURES],
            predictions=[Prediction("probability", "float"), Prediction("label", "bool")],
        )

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        probability = self.pipeline.predict_proba(df[FEATURES])[:, 1]
        return pd.DataFrame({"probability": probability, "label": probability >= 0.5}, index=df.index)
