"""Catalogs and tables: names, a Parquet lake (local or S3) and PostgreSQL, all as Arrow.

Plain Python: nothing here imports Django or the apps.
"""

from mlplatform.warehouse.base import DEFAULT_BATCH_SIZE, Catalog, Column, Part, Slice, Snapshot
from mlplatform.warehouse.errors import (
    CatalogNotFoundError,
    ColumnNameError,
    TableExistsError,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
)
from mlplatform.warehouse.lake import LakeCatalog
from mlplatform.warehouse.names import (
    DEFAULT_SCHEMA,
    NAME_PATTERN,
    TableName,
    check_column_names,
    is_valid_name,
    parse_table_name,
)
from mlplatform.warehouse.postgres import PostgresCatalog
from mlplatform.warehouse.registry import Catalogs, catalog_from_url, catalogs_from_config

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SCHEMA",
    "NAME_PATTERN",
    "Catalog",
    "CatalogNotFoundError",
    "Catalogs",
    "Column",
    "ColumnNameError",
    "LakeCatalog",
    "Part",
    "PostgresCatalog",
    "Slice",
    "Snapshot",
    "TableExistsError",
    "TableName",
    "TableNameError",
    "TableNotFoundError",
    "WarehouseError",
    "catalog_from_url",
    "catalogs_from_config",
    "check_column_names",
    "is_valid_name",
    "parse_table_name",
]
