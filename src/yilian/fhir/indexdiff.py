"""Rewriting a resource's search-index rows: only the rows that differ between two versions.

A booking changes one Slot field (``status`` free → busy), i.e. one token row out of the Slot's
eight; deleting every row of the Slot from all seven index tables and inserting them again cost
ten statements of a booking's ~40 (docs/benchmarks.md, issue #5). The store remembers for each
resource a unit of work touches the content its rows in the database were made from, and at
flush this module compares ``extract_index_tuples`` of that content with the new content's: per
table, rows only in the old set are deleted — all of the resource's rows of the table at once
(by ``resource_pk``) when none of them stays — and rows only in the new set are inserted. Tables
where nothing differs are not touched (ADR 0013).

This relies on the database holding exactly ``extract_index_tuples(old content)`` for the
resource, which holds because the store and the bulk loader are the only writers of index rows
and both write that; after a change of the extraction rules the rows are rebuilt by reindexing,
not by the next update.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.orm import Session

from yilian.fhir.models import INDEX_TABLES
from yilian.fhir.searchparams.extract import extract_index_tuples
from yilian.fhir.searchparams.values import COLUMNS

Content = dict[str, Any] | None
Row = tuple[Any, ...]  # (res_type, param, *values in COLUMNS[kind] order)


@dataclass
class IndexChanges:
    """What to write, per index kind (``string``, ``token``, …)."""

    clear: dict[str, list[int]] = field(default_factory=dict)  # resource pks losing every row
    remove: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # single rows to drop
    add: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # rows to insert

    @property
    def empty(self) -> bool:
        return not (self.clear or self.remove or self.add)


def _rows(content: Content) -> dict[str, list[Row]]:
    return extract_index_tuples(content) if content is not None else {}


def _as_dict(kind: str, pk: int, row: Row) -> dict[str, Any]:
    values = dict(zip(COLUMNS[kind], row[2:], strict=True))
    return {"resource_pk": pk, "res_type": row[0], "param": row[1], **values}


def index_changes(touched: Iterable[tuple[int, Content, Content]]) -> IndexChanges:
    """The writes that turn each resource's rows from ``old``'s into ``new``'s.

    ``touched`` holds ``(resource_pk, old, new)``; ``old`` is None when the database holds no
    rows for the resource (new, or deleted before), ``new`` is None when it must hold none.
    """
    changes = IndexChanges()
    for pk, old, new in touched:
        before, after = _rows(old), _rows(new)
        for kind in before.keys() | after.keys():
            old_rows, new_rows = set(before.get(kind, ())), after.get(kind, [])
            kept = old_rows.intersection(new_rows)
            if len(kept) < len(old_rows):
                if kept:
                    gone = [_as_dict(kind, pk, r) for r in before[kind] if r not in kept]
                    changes.remove.setdefault(kind, []).extend(gone)
                else:
                    changes.clear.setdefault(kind, []).append(pk)
            added = [_as_dict(kind, pk, r) for r in dict.fromkeys(new_rows) if r not in kept]
            if added:
                changes.add.setdefault(kind, []).extend(added)
    return changes


def delete_index_rows(session: Session, changes: IndexChanges) -> None:
    """Run the deletes of ``changes`` (the caller inserts ``changes.add``, e.g. by COPY)."""
    for kind, pks in changes.clear.items():
        mapped = INDEX_TABLES[kind]
        session.execute(delete(mapped).where(mapped.resource_pk.in_(pks)))
    for kind, rows in changes.remove.items():
        table: Any = INDEX_TABLES[kind].__table__
        columns = table.c
        keys = [columns[c] == bindparam(c) for c in ("resource_pk", "res_type", "param")]
        # IS NOT DISTINCT FROM (SQLite: IS): value columns may be NULL (a token without system).
        values = [columns[c].is_not_distinct_from(bindparam(c, type_=columns[c].type))
                  for c in COLUMNS[kind]]  # fmt: skip
        statement = delete(table).where(*keys, *values)
        session.connection().execute(statement, rows)
