"""Reads of tables: the configured catalogs, a name a user typed, listings, a table, its first rows,
and who may drop it. Pages, the API and batch jobs call these.

Every name a user types goes through the warehouse's one parser before anything else happens, so
a bad name is refused with the part and the rule named, before any file is read or SQL is made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from mlplatform.warehouse import (
    Catalog,
    Catalogs,
    Column,
    TableName,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
    catalogs_from_config,
    is_valid_name,
)
from mlplatform.warehouse.export import json_safe
from tables.models import TableRecord

PREVIEW_ROWS = 50


@lru_cache(maxsize=8)
def _catalogs(config: tuple[tuple[str, str], ...], default: str) -> Catalogs:
    return catalogs_from_config(dict(config), default)


def catalogs() -> Catalogs:
    """The configured catalogs (built once per process and settings)."""
    return _catalogs(tuple(settings.WAREHOUSE_CATALOGS.items()), settings.WAREHOUSE_DEFAULT_CATALOG)


def resolve(text: str, *, field: str = "name") -> tuple[Catalog, TableName]:
    """The catalog and parsed name of a table a user typed; ValidationError on ``field`` if bad."""
    try:
        return catalogs().resolve(str(text).strip())
    except (TableNameError, WarehouseError) as exc:
        raise ValidationError({field: [sentence(exc)]}) from None


def sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@dataclass
class TableSummary:
    name: TableName
    rows: int | None


@dataclass
class SchemaListing:
    catalog: str
    schema: str
    tables: list[TableSummary]


# --- who may see a table -------------------------------------------------------------------------
# A table the platform made (an upload, a job's output: it has a TableRecord) belongs to its team:
# for anyone else it does not exist. A table found in a catalog that the platform did not make is
# readable by every logged-in user (and droppable by admins only).


def _readable(user) -> Q:
    """Records of tables `user` may see: made by them or their teams, or owned by nobody (made with no
    user: as a table the platform did not make)."""
    return Q(created_by=user) | Q(team__in=user.groups.all()) | Q(created_by__isnull=True, team__isnull=True)


def hidden_names(user) -> set[str]:
    """The names of the tables `user` may not see (other teams' tables)."""
    if user.is_staff:
        return set()
    return set(TableRecord.objects.exclude(_readable(user)).values_list("name", flat=True))


def may_read(user, name: TableName) -> bool:
    return user.is_staff or not TableRecord.objects.filter(name=str(name)).exclude(_readable(user)).exists()


def team_may_read(team, name: TableName) -> bool:
    """Whether a job of `team`'s model may read the table: its own team's, or one the platform did not make."""
    record = TableRecord.objects.filter(name=str(name)).first()
    if record is None or (record.team_id is None and record.created_by_id is None):
        return True
    if team is None:
        return False
    if record.team_id is None:  # made by a user with no team then: theirs, and their teams'
        return team.user_set.filter(pk=record.created_by_id).exists()
    return record.team_id == team.pk


def team_owns(team, name: TableName) -> bool:
    """Whether the table is recorded (made by the platform: an upload, a job, a post-step) for `team`."""
    return team is not None and TableRecord.objects.filter(name=str(name), team=team).exists()


def append_refusal(team, catalog: Catalog, name: TableName, *, what: str) -> str:
    """Why `team`'s schedule may not append to the table ("" when it may): a history or events table
    must be new (the step makes it and records it for the team) or the team's own. Not a table the
    platform did not make (readable by everyone), nor another team's, made or being made: that one
    is "taken", as an output name would be, so it is not said to exist."""
    if team_owns(team, name):
        return ""
    if catalog.exists(name) and team_may_read(team, name):
        return (
            f"{name} exists and was not made by your team's platform jobs or uploads: "
            f"{what} must be new or your team's."
        )
    if TableRecord.objects.filter(name=str(name)).exists():  # another team's, made or being made
        return taken(name)
    return ""


def missing(name: TableName) -> str:
    """What a user is told of a table that does not exist, or that is another team's."""
    return f'The table "{name}" does not exist.'


def taken(name: TableName) -> str:
    """What a user is told of a name another team's table holds (it is not said whose, or what)."""
    return f"The name {name} is taken; choose another name."


def table_listing(*, user, catalog_name: str | None = None, schema: str | None = None) -> list[SchemaListing]:
    """Schemas and their tables with row counts, for one catalog (the default one if None): the
    ones `user` may see."""
    hidden = hidden_names(user)
    registry = catalogs()
    catalog = registry.get(catalog_name) if catalog_name else registry.default
    schemas = [schema] if schema else catalog.list_schemas()
    listing = []
    for name in schemas:
        if not is_valid_name(name):
            raise ValidationError({"schema": [f"There is no schema {name[:64]!r} in the catalog {catalog.name}."]})
        names = [TableName(catalog.name, name, t) for t in catalog.list_tables(name)]
        tables = [TableSummary(n, _rows(catalog, n)) for n in names if str(n) not in hidden]
        if tables or schema:  # a lake schema whose last table was dropped is just an empty folder
            listing.append(SchemaListing(catalog=catalog.name, schema=name, tables=tables))
    return listing


def _rows(catalog: Catalog, name: TableName) -> int | None:
    try:
        return catalog.row_count(name)
    except WarehouseError:  # dropped meanwhile, or unreadable: the listing still shows the rest
        return None


@dataclass(frozen=True)
class MadeBy:
    """The job whose output a table is, and the model and build that job ran."""

    job_id: UUID
    model_id: str
    build_id: UUID
    build_number: int  # "build 3", as the model's pages name it

    @property
    def short_job_id(self) -> str:
        return str(self.job_id)[:8]


@dataclass
class TableDetail:
    name: TableName
    columns: list[Column]
    rows: int
    made_by: MadeBy | None = None  # a job's output
    created_by: str | None = None  # the username of whoever uploaded it, or triggered the job


def table_get(text: str, *, user) -> TableDetail:
    catalog, name = resolve(text)
    if not may_read(user, name):
        raise TableMissing(missing(name))
    try:
        detail = TableDetail(name=name, columns=catalog.columns(name), rows=catalog.row_count(name))
    except TableNotFoundError as exc:
        raise TableMissing(sentence(exc)) from None
    detail.made_by, detail.created_by = lineage(name)
    return detail


def lineage(name: TableName) -> tuple[MadeBy | None, str | None]:
    """Which job made the table (None for an upload, or a table the platform did not make), and who."""
    record = TableRecord.objects.filter(name=str(name)).select_related("job__model", "job__build", "created_by").first()
    if record is None:
        return None, None
    job = record.job
    made_by = None
    if job:
        build = job.build
        made_by = MadeBy(job_id=job.pk, model_id=job.model.model_id, build_id=build.pk, build_number=build.number)
    return made_by, record.created_by.get_username() if record.created_by else None


def table_preview(text: str, *, user, limit: int = PREVIEW_ROWS) -> tuple[list[str], list[list]]:
    """The first ``limit`` rows as JSON-safe values: column names and rows."""
    catalog, name = resolve(text)
    if not may_read(user, name):
        raise TableMissing(missing(name))
    try:
        head = catalog.head(name, n=max(0, min(limit, 1000)))
    except TableNotFoundError as exc:
        raise TableMissing(sentence(exc)) from None
    columns = head.column_names
    return columns, [[clipped(json_safe(row[c])) for c in columns] for row in head.to_pylist()]


# --- previews as people read them -----------------------------------------------------------------
# The table page, a job's page and "Try on 100 rows" show rows in the same order and rounding: the
# columns that matter most first (a job's predictions), floats to a few significant digits. The API
# and downloads keep every column in table order at full precision.

READABLE_DIGITS = 4

# Apps that make tables say which of a table's columns come first in its preview (batchjobs: the
# predictions of the job that made it): tables imports none of them.
LEADING_COLUMNS: list[Callable[[str], Sequence[str]]] = []


def leading_columns(name: TableName | str) -> list[str]:
    return [column for provider in LEADING_COLUMNS for column in provider(str(name))]


def readable_preview(
    columns: list[str], rows: list[list], *, first: Sequence[str] = ()
) -> tuple[list[str], list[list]]:
    """Preview rows for reading: the `first` columns that exist lead, then the others in table order;
    floats rounded to READABLE_DIGITS significant digits (whole numbers and text as they are)."""
    leading = [c for c in dict.fromkeys(first) if c in columns]
    order = leading + [c for c in columns if c not in leading]
    positions = [columns.index(c) for c in order]
    return order, [[readable(row[i]) for i in positions] for row in rows]


def readable(value):
    """A float rounded for reading (as text: 0.1235, 123457, 1.235e-07); lists and structs inside."""
    if isinstance(value, dict):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v) for v in value]
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -4 or magnitude >= 15:
        return f"{value:.{READABLE_DIGITS}g}"
    text = f"{value:.{max(0, READABLE_DIGITS - 1 - magnitude)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


PREVIEW_CELL_CHARS = 10_000


def clipped(value):
    """A preview's cell: text cut at PREVIEW_CELL_CHARS, saying how much was left out (a download
    has it whole)."""
    if isinstance(value, str) and len(value) > PREVIEW_CELL_CHARS:
        return f"{value[:PREVIEW_CELL_CHARS]}… [{len(value) - PREVIEW_CELL_CHARS:,} more characters]"
    return value


class TableMissing(Exception):
    """The table does not exist (a 404 for pages and the API)."""


def may_drop(user, name: TableName) -> bool:
    """Admins; whoever made the table here; the team it belongs to (a job's output: the model's team)."""
    if user is None or user.is_staff:
        return user is not None
    record = TableRecord.objects.filter(name=str(name)).first()
    if record is None:
        return False
    if record.created_by_id == user.pk:
        return True
    return bool(record.team_id and user.groups.filter(pk=record.team_id).exists())
