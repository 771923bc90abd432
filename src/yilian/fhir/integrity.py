"""``yilian store check``: search-index rows that no current resource accounts for.

The index tables have no foreign key to ``fhir_resource`` (migration 0008, ADR 0010): the store
and the bulk writer delete a resource's index rows in the same transaction as they write its new
version or its deletion. This check finds what a bug or a hand-made change would leave behind:
*orphans* (rows naming a ``fhir_resource.pk`` that does not exist) and *stale* rows (rows of a
deleted resource, which searches already ignore). ``--repair`` deletes both.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer
from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.orm import Session

from yilian.config import load_settings
from yilian.db import make_engine, session_factory, unit_of_work

# arch: store-access — maintenance of the index tables themselves: counts and deletes index
# rows by key, never reads resource content (no personal data, so nothing to audit).
from yilian.fhir.models import INDEX_TABLES, IndexTable, ResourceRow

app = typer.Typer(help="Check the FHIR store's search index.", no_args_is_help=True)


@dataclass(frozen=True)
class IndexDefects:
    table: str
    orphans: int
    stale: int


def _orphan(table: IndexTable) -> ColumnElement[bool]:
    return ~exists(select(ResourceRow.pk).where(ResourceRow.pk == table.resource_pk))


def _stale(table: IndexTable) -> ColumnElement[bool]:
    deleted = select(ResourceRow.pk).where(
        ResourceRow.pk == table.resource_pk, ResourceRow.deleted.is_(True)
    )
    return exists(deleted)


def index_defects(session: Session) -> list[IndexDefects]:
    """Orphan and stale rows per index table (every table listed, defects or not)."""
    found = []
    for table in INDEX_TABLES.values():
        count = select(func.count()).select_from(table)
        orphans = session.execute(count.where(_orphan(table))).scalar_one()
        stale = session.execute(count.where(_stale(table))).scalar_one()
        found.append(IndexDefects(table.__tablename__, int(orphans), int(stale)))
    return found


def repair(session: Session) -> int:
    """Delete orphan and stale rows; returns how many."""
    removed = 0
    for table in INDEX_TABLES.values():
        for condition in (_orphan(table), _stale(table)):
            result = session.execute(delete(table).where(condition))
            removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


@app.callback()
def store() -> None:
    """Check the FHIR store (a group, so that ``check`` stays a named subcommand)."""


@app.command()
def check(
    fix: bool = typer.Option(False, "--repair", help="Delete the orphan and stale rows found."),
) -> None:
    """Report index rows without a current resource; exit 1 when there are any."""
    engine = make_engine(load_settings().database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            defects = index_defects(session)
            for item in defects:
                typer.echo(f"{item.table}: {item.orphans} orphan, {item.stale} stale")
            total = sum(d.orphans + d.stale for d in defects)
            if total and fix:
                typer.echo(f"deleted {repair(session)} rows")
                return
    finally:
        engine.dispose()
    if total:
        raise typer.Exit(1)
    typer.echo("the search index has no orphan or stale rows")
