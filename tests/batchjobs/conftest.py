"""Fixtures for the batch job tests (the building blocks are in jobkit.py)."""

import pytest

from tests.batchjobs.jobkit import model_with_config


@pytest.fixture
def config(ml_model, user):
    """The model with an active batch config on a verified build that doubles the amount."""
    return model_with_config(ml_model, user)
