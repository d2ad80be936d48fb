"""Catalogs from configuration: name -> URL, one of them the default."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from mlplatform.warehouse.base import Catalog
from mlplatform.warehouse.errors import CatalogNotFoundError, WarehouseError
from mlplatform.warehouse.lake import LakeCatalog
from mlplatform.warehouse.names import DEFAULT_SCHEMA, TableName, parse_table_name
from mlplatform.warehouse.postgres import PostgresCatalog


def catalog_from_url(name: str, url: str) -> Catalog:
    """A catalog for `url`: file:// or s3:// is a lake, postgresql:// a PostgreSQL database.

    Nothing is connected or created here; that happens on first use.
    """
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    if scheme in ("file", "s3"):
        return LakeCatalog(name, url)
    if scheme in ("postgresql", "postgres"):
        return PostgresCatalog(name, url)
    raise WarehouseError(
        f'the catalog "{name}" has an unsupported URL; use file:///path, s3://bucket/prefix '
        "or postgresql://user@host:port/db"
    )


class Catalogs:
    """The configured catalogs, and how table names given by users map onto them."""

    def __init__(self, catalogs: Mapping[str, Catalog], default_catalog: str) -> None:
        if default_catalog not in catalogs:
            raise CatalogNotFoundError(
                f'the default catalog "{default_catalog}" is not among the configured catalogs '
                f"({', '.join(catalogs) or 'none'})"
            )
        self._catalogs = dict(catalogs)
        self.default_name = default_catalog

    @property
    def default(self) -> Catalog:
        return self._catalogs[self.default_name]

    def names(self) -> list[str]:
        """The catalog names, in configuration order."""
        return list(self._catalogs)

    def get(self, name: str) -> Catalog:
        try:
            return self._catalogs[name]
        except (KeyError, TypeError):
            raise CatalogNotFoundError(f'there is no catalog "{str(name)[:100]}"') from None

    def resolve(self, text: str) -> tuple[Catalog, TableName]:
        """Parse a user's table name (defaults: this default catalog, schema "default")."""
        name = parse_table_name(text, self.default_name, DEFAULT_SCHEMA)
        return self.get(name.catalog), name


def catalogs_from_config(mapping: Mapping[str, str], default_catalog: str) -> Catalogs:
    """Build the registry from settings, e.g. {"lake": "file:///srv/lake", "pg": "postgresql://..."}."""
    return Catalogs({name: catalog_from_url(name, url) for name, url in mapping.items()}, default_catalog)
