"""Fixtures for the tables tests: a lake of the test's own (and PostgreSQL when configured)."""

import os

import pytest


@pytest.fixture(autouse=True)
def lake(settings, tmp_path):
    """A fresh lake per test; a PostgreSQL catalog too when the tests run on PostgreSQL."""
    catalogs = {"prod": (tmp_path / "lake").as_uri()}
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        catalogs["pg"] = url
    settings.WAREHOUSE_CATALOGS = catalogs
    settings.WAREHOUSE_DEFAULT_CATALOG = "prod"
    return tmp_path / "lake"
