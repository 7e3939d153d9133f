"""The schema stays documented and portable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from replay.storage import SCHEMA_VERSION, schema
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

SCHEMA_DOC = Path(__file__).parents[2] / "docs" / "schema.md"


def documented_columns() -> dict[str, set[str]]:
    """Table name -> the column names in the first cell of its table rows in docs/schema.md."""
    tables: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in SCHEMA_DOC.read_text().splitlines():
        heading = re.match(r"## `(\w+)`", line)
        if heading:
            current = tables.setdefault(heading.group(1), set())
        elif current is not None and line.startswith("| `"):
            first_cell = line.split("|")[1]
            current.update(re.findall(r"`(\w+)`", first_cell))
    return tables


def test_docs_describe_every_table_and_column() -> None:
    # GIVEN the tables of schema.py and the sections of docs/schema.md
    documented = documented_columns()
    # THEN both name the same tables and columns
    assert set(documented) == set(schema.metadata.tables)
    for name, table in schema.metadata.tables.items():
        assert documented[name] == set(table.c.keys()), name
    assert f"Schema version: **{SCHEMA_VERSION}**" in SCHEMA_DOC.read_text()


@pytest.mark.parametrize("table", schema.metadata.sorted_tables, ids=lambda table: table.name)
def test_every_column_has_a_comment(table) -> None:
    assert [c.name for c in table.c if not c.comment] == []


@pytest.mark.parametrize("table", schema.metadata.sorted_tables, ids=lambda table: table.name)
def test_schema_compiles_for_postgresql(table) -> None:
    # The store will also live in PostgreSQL: the DDL must not depend on SQLite.
    ddl = str(CreateTable(table, if_not_exists=True).compile(dialect=postgresql.dialect()))
    assert "CREATE TABLE IF NOT EXISTS" in ddl
    for index in table.indexes:
        CreateIndex(index, if_not_exists=True).compile(dialect=postgresql.dialect())
