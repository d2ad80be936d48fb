#!/usr/bin/env python3
"""What the local checks of a Model subclass's predict() cost on a big frame; prints its figures.

    .venv/bin/python bench/local_checks.py [--rows 1000000] [--repeat 5]

A model that doubles a float and flags a threshold (predictions `real`, `boolean`, `varchar`) is
called on --rows rows as written (Model.predict.__wrapped__) and checked (predict()): the best of
--repeat runs of each, and their difference, the checks' cost (check_output, the row-order check
on a few rows, the declared types).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlplatform.sdk import Feature, Model, ModelSchema, Prediction  # noqa: E402


class Scorer(Model):
    def schema(self):
        return ModelSchema(
            [Feature("amount", "double"), Feature("country", "varchar")],
            [Prediction("score", "real"), Prediction("is_fraud", "boolean"), Prediction("band", "varchar")],
        )

    def predict(self, df):
        score = df["amount"] * 2
        return pd.DataFrame(
            {"score": score, "is_fraud": score > 1.5, "band": np.where(score > 1.0, "high", "low")}, index=df.index
        )


def best(function, frame, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(frame)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.random(args.rows), "country": rng.choice(["us", "gb", "de"], args.rows)})
    model = Scorer()
    model.predict(frame.head(10))  # warm up
    plain = best(lambda df: Scorer.predict.__wrapped__(model, df), frame, args.repeat)
    checked = best(model.predict, frame, args.repeat)
    print(f"rows: {args.rows:,}; load average {os.getloadavg()[0]:.2f}")
    print(f"predict() as written: {plain * 1000:.0f} ms; checked: {checked * 1000:.0f} ms")
    print(f"the checks: {(checked - plain) * 1000:.0f} ms ({(checked - plain) / args.rows * 1e9:.0f} ns a row)")


if __name__ == "__main__":
    main()
