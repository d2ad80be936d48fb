"""Table names, column names and the catalog registry: refused before anything is touched."""

from __future__ import annotations

import dataclasses

import pytest

from mlplatform.warehouse import (
    DEFAULT_SCHEMA,
    CatalogNotFoundError,
    ColumnNameError,
    LakeCatalog,
    PostgresCatalog,
    TableName,
    TableNameError,
    WarehouseError,
    catalog_from_url,
    catalogs_from_config,
    check_column_names,
    parse_table_name,
)

RULE = "must match [a-z_][a-z0-9_]{0,62}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t", TableName("lake", "default", "t")),
        ("s.t", TableName("lake", "s", "t")),
        ("pg.s.t", TableName("pg", "s", "t")),
        ("_x9.a_b.c" + "0" * 61, TableName("_x9", "a_b", "c" + "0" * 61)),
    ],
)
def test_it_fills_in_the_default_catalog_and_schema(text, expected):
    assert parse_table_name(text, "lake", "default") == expected


def test_the_default_schema_is_called_default():
    assert DEFAULT_SCHEMA == "default"
    assert parse_table_name("t", "lake") == TableName("lake", "default", "t")


def test_a_name_prints_as_catalog_schema_table_and_cannot_change():
    name = TableName("lake", "default", "t")
    assert str(name) == "lake.default.t"
    with pytest.raises(dataclasses.FrozenInstanceError):
        name.table = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "kind", "part"),
    [
        ("prod.x;drop table y", "table", "x;drop table y"),
        ("prod.x;drop.y", "schema", "x;drop"),
        ('prod."a""b".c', "schema", '"a""b"'),
        ("Prod.X.Y", "catalog", "Prod"),
        ("prod.X.y", "schema", "X"),
        ("prod.x." + "a" * 64, "table", "a" * 64),
        ("pr\u043ed.x.y", "catalog", "pr\u043ed"),  # a Cyrillic o
        ('"secret.csv"', "schema", '"secret'),
        ("read_csv('/etc/passwd')", "table", "read_csv('/etc/passwd')"),
        ("a..b", "schema", ""),
        (" t", "table", " t"),
        ("t\n", "table", "t\n"),
        ("1abc", "table", "1abc"),
        ("caf\u00e9", "table", "caf\u00e9"),
        ("x.\u0661", "table", "\u0661"),  # an Arabic-Indic digit matches \d without re.ASCII
    ],
)
def test_it_refuses_a_bad_part_and_names_it_with_the_rule(text, kind, part):
    with pytest.raises(TableNameError) as caught:
        parse_table_name(text, "lake", "default")
    message = str(caught.value)
    assert message.startswith(f'table name "{text}": the {kind} part "{part}" {RULE}')
    assert "lowercase letters, digits and underscores" in message


def test_the_message_matches_the_documented_example():
    with pytest.raises(TableNameError) as caught:
        parse_table_name("prod.X.y", "lake", "default")
    assert str(caught.value) == (
        'table name "prod.X.y": the schema part "X" must match [a-z_][a-z0-9_]{0,62} '
        "(lowercase letters, digits and underscores, starting with a letter or underscore, "
        "at most 63 characters)"
    )


def test_it_refuses_more_than_three_parts():
    with pytest.raises(TableNameError, match="at most three parts catalog.schema.table"):
        parse_table_name("a.b.c.d", "lake", "default")


@pytest.mark.parametrize("text", ["", None, 42, b"t", ["t"]])
def test_it_refuses_empty_or_non_text_names(text):
    with pytest.raises(TableNameError):
        parse_table_name(text, "lake", "default")


def test_a_63_character_part_is_the_longest_allowed():
    assert parse_table_name("a" * 63, "lake", "default").table == "a" * 63


def test_a_very_long_name_is_shortened_in_the_message():
    with pytest.raises(TableNameError) as caught:
        parse_table_name("A" * 10_000, "lake", "default")
    assert len(str(caught.value)) < 500


def test_constructing_a_name_directly_validates_it_too():
    with pytest.raises(TableNameError, match='the table part "x;drop table y"'):
        TableName("lake", "default", "x;drop table y")
    with pytest.raises(TableNameError, match="the schema part"):
        TableName("lake", "../etc", "passwd")


def test_it_accepts_valid_column_names_and_refuses_others():
    assert check_column_names(["id", "_ordinal", "score_2"]) == ["id", "_ordinal", "score_2"]
    for bad in ["Amount", "a b", 'x"; drop', "", "\u00e9t\u00e9", "a" * 64]:
        with pytest.raises(ColumnNameError, match=RULE.replace("[", r"\[").replace("{", r"\{")):
            check_column_names(["id", bad])
    with pytest.raises(ColumnNameError, match='"id" appears more than once'):
        check_column_names(["id", "id"])
    with pytest.raises(ColumnNameError, match="at least one column"):
        check_column_names([])


# --- the registry -------------------------------------------------------------------------------

CONFIG = {
    "lake": "file:///srv/mlplatform/lake",
    "s3lake": "s3://bucket/prefix",
    "pg": "postgresql://app:s3cret@db.example:5432/warehouse",
}


def test_it_builds_catalogs_from_config_without_connecting_anywhere():
    catalogs = catalogs_from_config(CONFIG, "lake")
    assert catalogs.names() == ["lake", "s3lake", "pg"]
    assert isinstance(catalogs.get("lake"), LakeCatalog)
    assert isinstance(catalogs.get("s3lake"), LakeCatalog)
    assert isinstance(catalogs.get("pg"), PostgresCatalog)
    assert catalogs.default is catalogs.get("lake")
    assert catalogs.get("lake").root == "/srv/mlplatform/lake"
    assert catalogs.get("s3lake").root == "bucket/prefix"


def test_it_resolves_names_against_the_default_catalog_and_schema():
    catalogs = catalogs_from_config(CONFIG, "lake")
    catalog, name = catalogs.resolve("scores")
    assert catalog is catalogs.get("lake") and name == TableName("lake", "default", "scores")
    catalog, name = catalogs.resolve("pg.public.scores")
    assert catalog is catalogs.get("pg") and name == TableName("pg", "public", "scores")


def test_it_refuses_a_name_in_an_unknown_catalog():
    catalogs = catalogs_from_config(CONFIG, "lake")
    with pytest.raises(CatalogNotFoundError, match='no catalog "nope"'):
        catalogs.resolve("nope.default.t")
    with pytest.raises(CatalogNotFoundError):
        catalogs.get("nope")


def test_a_bad_name_is_refused_before_any_catalog_is_touched():
    catalogs = catalogs_from_config(CONFIG, "lake")
    for bad in ["prod.x;drop table y", "pg.x;drop table y", '"secret.csv"', "/etc/passwd"]:
        with pytest.raises(TableNameError):
            catalogs.resolve(bad)


def test_it_refuses_a_default_catalog_that_is_not_configured():
    with pytest.raises(CatalogNotFoundError, match='default catalog "main"'):
        catalogs_from_config(CONFIG, "main")


@pytest.mark.parametrize("url", ["mysql://db/x", "file://relative/path", "/srv/lake", "s3://", "http://x"])
def test_it_refuses_an_unsupported_catalog_url(url):
    with pytest.raises(WarehouseError):
        catalogs_from_config({"lake": url}, "lake")


def test_it_refuses_a_catalog_name_that_is_not_a_valid_name():
    with pytest.raises(WarehouseError, match='catalog name "Lake"'):
        catalogs_from_config({"Lake": "file:///srv/lake"}, "Lake")


def test_a_catalog_refuses_a_name_of_another_catalog():
    lake = catalogs_from_config(CONFIG, "lake").get("lake")
    with pytest.raises(WarehouseError, match='in catalog "pg", not in "lake"'):
        lake.exists("pg.default.t")


def test_a_catalog_url_is_shown_without_its_credentials():
    pg = catalogs_from_config(CONFIG, "lake").get("pg")
    assert pg.display_url == "postgresql://db.example:5432/warehouse"
    assert "s3cret" not in repr(pg)
    in_query = catalog_from_url("q", "postgresql://app@db:5432/w?password=hunter2&sslmode=require")
    assert in_query.display_url == "postgresql://db:5432/w"
    s3 = catalog_from_url("s", "s3://bucket/lake?access_key=AKIA123&secret_key=hunter2")
    assert s3.display_url == "s3://bucket/lake"
