"""Fixtures for the batch job tests (the building blocks are in jobkit.py)."""

import pytest

from tests.batchjobs.jobkit import make_input, model_with_config


@pytest.fixture
def config(ml_model, user):
    """The model with an active batch config on a verified build that doubles the amount."""
    return model_with_config(ml_model, user)


@pytest.fixture
def ready(ml_model, user):
    """That config, and an input table prod.t.input of 2,000 rows."""
    model_with_config(ml_model, user)
    make_input("prod.t.input", 2_000)
    return ml_model
