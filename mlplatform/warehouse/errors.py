"""The errors the warehouse raises; all derive from WarehouseError."""

from __future__ import annotations


class WarehouseError(Exception):
    """Anything the warehouse refuses or cannot do; the message is a sentence for users."""


class TableNameError(WarehouseError, ValueError):
    """A table (or catalog, schema) name does not follow the naming rule."""


class ColumnNameError(WarehouseError, ValueError):
    """A column name of a table to create does not follow the naming rule."""


class TableExistsError(WarehouseError):
    """The table to create already exists; nothing was changed."""


class TableNotFoundError(WarehouseError):
    """The table does not exist (or is not complete yet)."""


class CatalogNotFoundError(WarehouseError):
    """No catalog of that name is configured."""
