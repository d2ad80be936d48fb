"""Synthetic card transactions with a known fraud pattern, generated with a fixed seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

COUNTRIES = ["us", "gb", "de", "fr", "es", "it", "nl", "br", "in", "ng"]
DEVICES = ["mobile", "desktop", "tablet"]
MERCHANTS = ["grocery", "travel", "electronics", "fashion", "gaming", "fuel", "restaurants", "crypto"]
NUMERIC = ["amount", "account_age_days", "hour_of_day", "num_prev_transactions", "avg_amount_30d"]
CATEGORICAL = ["country", "device", "merchant_category"]
BOOLEAN = ["is_foreign"]
FEATURES = NUMERIC[:1] + CATEGORICAL[:2] + NUMERIC[1:] + BOOLEAN + CATEGORICAL[2:]


def generate(rows: int, seed: int = 7, start_id: int = 0) -> pd.DataFrame:
    """``rows`` transactions: a transaction_id, the model's features and the true label."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.5, 1.1, rows), 2)
    country = rng.choice(COUNTRIES, rows, p=[0.3, 0.12, 0.12, 0.1, 0.08, 0.08, 0.06, 0.05, 0.05, 0.04])
    device = rng.choice(DEVICES, rows, p=[0.6, 0.3, 0.1])
    account_age_days = rng.integers(0, 3650, rows)
    hour_of_day = rng.integers(0, 24, rows)
    num_prev = rng.poisson(20, rows)
    avg_30d = np.round(amount * rng.uniform(0.3, 1.5, rows), 2)
    is_foreign = rng.random(rows) < 0.15
    merchant = rng.choice(MERCHANTS, rows)
    score = (
        -4.0
        + 1.2 * (amount > 500)
        + 0.9 * is_foreign
        + 1.1 * (account_age_days < 30)
        + 0.7 * ((hour_of_day < 5) | (hour_of_day > 22))
        + 1.3 * (merchant == "crypto")
        + 0.6 * (country == "ng")
        + 0.8 * (amount > 3 * avg_30d)
    )
    label = rng.random(rows) < 1 / (1 + np.exp(-score))
    return pd.DataFrame(
        {
            "transaction_id": np.arange(start_id, start_id + rows, dtype="int64"),
            "amount": amount,
            "country": country,
            "device": device,
            "account_age_days": account_age_days.astype("int64"),
            "hour_of_day": hour_of_day.astype("int64"),
            "num_prev_transactions": num_prev.astype("int64"),
            "avg_amount_30d": avg_30d,
            "is_foreign": is_foreign,
            "merchant_category": merchant,
            "label": label,
        }
    )
