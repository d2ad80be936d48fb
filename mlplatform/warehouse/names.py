"""Table names: `catalog.schema.table`, validated before any SQL or path exists.

Every part must fully match NAME_PATTERN. The rule is deliberately narrow (lowercase ASCII,
no quotes, dots or spaces) so that a valid name is safe as a path segment and needs no
escaping; engines still quote every identifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mlplatform.warehouse.errors import ColumnNameError, TableNameError

NAME_PATTERN = "[a-z_][a-z0-9_]{0,62}"
NAME_RULE = (
    f"must match {NAME_PATTERN} (lowercase letters, digits and underscores, "
    "starting with a letter or underscore, at most 63 characters)"
)
DEFAULT_SCHEMA = "default"

_NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
_PART_KINDS = {1: ("table",), 2: ("schema", "table"), 3: ("catalog", "schema", "table")}
_SHOWN_CHARS = 100  # user text in messages is cut, so a huge name cannot flood a page or log


def is_valid_name(part: object) -> bool:
    """True when `part` is a str that fully matches NAME_PATTERN."""
    return isinstance(part, str) and _NAME_RE.fullmatch(part) is not None


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


@dataclass(frozen=True)
class TableName:
    """A fully qualified, validated table name. Constructing one validates every part."""

    catalog: str
    schema: str
    table: str

    def __post_init__(self) -> None:
        for kind in ("catalog", "schema", "table"):
            part = getattr(self, kind)
            if not is_valid_name(part):
                raise TableNameError(f'the {kind} part "{_shown(str(part))}" {NAME_RULE}')

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"


def parse_table_name(text: object, default_catalog: str, default_schema: str = DEFAULT_SCHEMA) -> TableName:
    """Parse `table`, `schema.table` or `catalog.schema.table`, filling in the defaults.

    Raises TableNameError naming the offending part and the rule.
    """
    if not isinstance(text, str):
        raise TableNameError(f"a table name must be text, not {type(text).__name__}")
    if not text:
        raise TableNameError("a table name is required")
    parts = text.split(".")
    if len(parts) > 3:
        raise TableNameError(
            f'table name "{_shown(text)}": has {len(parts)} parts; a table name has at most '
            "three parts catalog.schema.table"
        )
    for kind, part in zip(_PART_KINDS[len(parts)], parts, strict=True):
        if not is_valid_name(part):
            raise TableNameError(f'table name "{_shown(text)}": the {kind} part "{_shown(part)}" {NAME_RULE}')
    full = [default_catalog, default_schema][: 3 - len(parts)] + parts
    return TableName(*full)


def check_column_names(names: Iterable[object]) -> list[str]:
    """Validate the column names of a table to create; returns them as a list.

    Column names follow the same rule as table names, and must be unique.
    """
    checked: list[str] = []
    for name in names:
        if not isinstance(name, str) or not is_valid_name(name):
            raise ColumnNameError(f'the column name "{_shown(str(name))}" {NAME_RULE}')
        if name in checked:
            raise ColumnNameError(f'the column name "{name}" appears more than once')
        checked.append(name)
    if not checked:
        raise ColumnNameError("a table needs at least one column")
    return checked
