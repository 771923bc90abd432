"""An update rewrites only the search-index rows that changed (ADR 0013), on SQLite and PostgreSQL.

After every sequence of writes the index tables must hold exactly ``extract_index_tuples`` of
each resource's current content — nothing stale, nothing twice — and an update touches only the
tables whose rows differ.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, event, select

from yilian.db import session_factory, unit_of_work
from yilian.fhir.indexdiff import index_changes
from yilian.fhir.models import INDEX_TABLES, ResourceRow
from yilian.fhir.searchparams.extract import extract_index_tuples
from yilian.fhir.searchparams.values import COLUMNS
from yilian.fhir.store import ResourceStore


def slot(status: str, comment: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Slot",
        "id": "s1",
        "schedule": {"reference": "Schedule/sch1"},
        "status": status,
        "start": "2026-12-01T08:00:00+08:00",
        "end": "2026-12-01T08:15:00+08:00",
        "serviceType": [{"coding": [{"system": "http://example.org/st", "code": "57"}]}],
        **extra,
    }
    if comment is not None:
        body["comment"] = comment
    return body


def stored_rows(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every index row in the database as (res_type, resource id, param, *values), per kind."""
    found: dict[str, Counter[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        ids = dict(conn.execute(select(ResourceRow.pk, ResourceRow.res_id)).all())
        for kind, mapped in INDEX_TABLES.items():
            table: Any = mapped.__table__
            columns = [table.c.resource_pk, table.c.res_type, table.c.param]
            columns += [table.c[c] for c in COLUMNS[kind]]
            rows = conn.execute(select(*columns)).all()
            if rows:
                found[kind] = Counter((r[1], ids[r[0]], *r[2:]) for r in rows)
    return found


def expected_rows(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    found: dict[str, Counter[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        query = select(ResourceRow.res_id, ResourceRow.content).where(
            ResourceRow.deleted.is_(False)
        )
        for res_id, content in conn.execute(query).all():
            for kind, tuples in extract_index_tuples(content).items():
                counter = found.setdefault(kind, Counter())
                counter.update((t[0], res_id, *t[1:]) for t in tuples)
    return found


def write(engine: Engine, *steps: tuple[str, dict[str, Any] | None]) -> Counter[str]:
    """Run ``(res_id, content or None for delete)`` steps in one unit of work; the statements
    it sent, by their first two words (``DELETE FROM``, ``INSERT INTO``) and table."""
    sent: Counter[str] = Counter()

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0] in ("DELETE", "INSERT"):
            sent[f"{words[0]} {words[2].strip(chr(34))}"] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store = ResourceStore(session)
            for res_id, content in steps:
                if content is None:
                    store.delete("Slot", res_id)
                else:
                    store.update("Slot", res_id, content)
            store.flush()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return sent


def test_status_change_rewrites_one_token_row(engine: Engine) -> None:
    write(engine, ("s1", slot("free", comment="上午")))
    assert stored_rows(engine) == expected_rows(engine)
    sent = write(engine, ("s1", slot("busy", comment="上午")))
    assert stored_rows(engine) == expected_rows(engine)
    deletes = {k: n for k, n in sent.items() if k.startswith("DELETE idx_")}
    inserts = {k: n for k, n in sent.items() if k.startswith("INSERT idx_")}
    assert deletes == {"DELETE idx_token": 1} and inserts == {"INSERT idx_token": 1}


def test_rows_follow_every_kind_of_change(engine: Engine) -> None:
    write(engine, ("s1", slot("free")), ("s2", slot("free") | {"id": "s2"}))
    # a value gone entirely (comment), one changed (status), a reference moved, a new date
    moved = slot("busy", schedule={"reference": "Schedule/sch2"}, start="2026-12-02T09:00:00Z")
    write(engine, ("s1", moved))
    assert stored_rows(engine) == expected_rows(engine)
    # several versions of one resource in one unit of work, then back to the first content
    write(engine, ("s1", slot("free")), ("s1", slot("busy")), ("s1", slot("free")))
    assert stored_rows(engine) == expected_rows(engine)
    # deleted: no rows; created again after the delete: its rows again
    write(engine, ("s2", None))
    assert stored_rows(engine) == expected_rows(engine)
    assert all(row[1] != "s2" for rows in stored_rows(engine).values() for row in rows)
    write(engine, ("s2", slot("busy") | {"id": "s2"}))
    assert stored_rows(engine) == expected_rows(engine)


def test_unchanged_content_writes_no_index_rows(engine: Engine) -> None:
    write(engine, ("s1", slot("free")))
    sent = write(engine, ("s1", slot("free")))
    assert not [k for k in sent if "idx_" in k]
    assert stored_rows(engine) == expected_rows(engine)


def test_index_changes_keeps_shared_rows() -> None:
    old, new = slot("free", comment="a"), slot("busy", comment="a")
    changes = index_changes([(7, old, new)])
    assert set(changes.remove) == {"token"} and not changes.clear
    removed = changes.remove["token"]
    assert [(r["param"], r["code"]) for r in removed] == [("status", "free")]
    assert [(r["param"], r["code"]) for r in changes.add["token"]] == [("status", "busy")]
    assert all(r["resource_pk"] == 7 for r in [*removed, *changes.add["token"]])
    gone = index_changes([(7, old, None)])
    assert not gone.add and sorted(gone.clear) == sorted(extract_index_tuples(old))
