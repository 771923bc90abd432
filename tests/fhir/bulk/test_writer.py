"""The batch writer's rows: what ResourceStore would write, whichever path (COPY text or not)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select

from tests.fhir.bulk.conftest import synthea_resources, write_ndjson
from yilian.audit.models import AuditEntryRow
from yilian.fhir.bulk import copytext
from yilian.fhir.bulk.importer import Loader, LoadOptions
from yilian.fhir.bulk.prepare import index_columns
from yilian.fhir.models import (
    INDEX_TABLES,
    ReferenceIndex,
    ResourceRow,
    ResourceVersionRow,
    StringIndex,
)
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.searchparams.extract import extract_index_rows, extract_index_tuples


def load(runtime: Runtime, path: Path, batch_size: int = 40) -> None:
    options = LoadOptions(workers=0, batch_size=batch_size)
    report = Loader(runtime, RequestContext.system(), options).load([path])
    assert report.rejected == 0, report.errors


def test_copy_text_escapes_what_the_format_reserves() -> None:
    assert copytext.field("a\tb\nc\\d\re\x01") == "a\\tb\\nc\\\\d\\re\\x01"
    assert copytext.field(None) == "\\N"
    assert copytext.field(True) == "t"
    assert copytext.field(0.1) == "0.1"
    assert copytext.field(datetime(1, 1, 1)) == "0001-01-01 00:00:00"
    assert copytext.marked_lines([("x", None)]) == "\x01\tx\t\\N\n"
    assert copytext.unescape_json(copytext.escape_json('{"a":"\\n\\\\"}')) == '{"a":"\\n\\\\"}'


def test_awkward_text_round_trips_into_content_and_indexes(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    family = 'Tab\tNew\nline \\back\\slash "quote" \x01 王小明 \\N'
    patient = {"resourceType": "Patient", "id": "odd", "name": [{"family": family}]}
    load(runtime, write_ndjson(tmp_path / "odd.ndjson", [patient]))
    with engine.connect() as conn:
        content = conn.execute(select(ResourceRow.content).where(ResourceRow.res_id == "odd"))
        history = conn.execute(
            select(ResourceVersionRow.content, ResourceVersionRow.method).where(
                ResourceVersionRow.res_id == "odd"
            )
        ).one()
        exact = conn.execute(
            select(StringIndex.value_exact).where(
                StringIndex.param == "family", StringIndex.res_type == "Patient"
            )
        ).scalar_one()
    stored = content.scalar_one()
    assert stored["name"][0]["family"] == family
    assert history.content == stored and history.method == "PUT"
    assert exact == family


def test_index_and_history_rows_match_extraction(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    resources = synthea_resources(3)
    load(runtime, write_ndjson(tmp_path / "s.ndjson", resources))
    with engine.connect() as conn:
        current = dict(
            conn.execute(
                select(ResourceRow.pk, ResourceRow.content).where(
                    ResourceRow.res_type != "AuditEvent"
                )
            ).all()
        )
        versions = dict(
            conn.execute(
                select(ResourceVersionRow.resource_pk, ResourceVersionRow.content).where(
                    ResourceVersionRow.res_type != "AuditEvent"
                )
            ).all()
        )
        assert versions == current
        for kind, table in INDEX_TABLES.items():
            expected = sum(len(extract_index_rows(c).get(kind, [])) for c in current.values())
            pks = conn.execute(
                select(table.resource_pk).where(table.resource_pk.in_(list(current)))
            ).all()
            assert len(pks) == expected, kind


def test_each_batch_is_an_audit_event_naming_every_resource(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    resources = synthea_resources(4)[:100]
    load(runtime, write_ndjson(tmp_path / "a.ndjson", resources), batch_size=60)
    with engine.connect() as conn:
        seqs = conn.execute(select(AuditEntryRow.seq).where(AuditEntryRow.event == "import"))
        events = {f"audit-{s}" for s in seqs.scalars()}
        assert len(events) == 2
        stored = conn.execute(
            select(ResourceRow.pk, ResourceRow.res_id, ResourceRow.content).where(
                ResourceRow.res_type == "AuditEvent", ResourceRow.res_id.in_(events)
            )
        ).all()
        assert {row.res_id for row in stored} == events
        history = conn.execute(
            select(ResourceVersionRow.method, ResourceVersionRow.version_id).where(
                ResourceVersionRow.res_id.in_(events)
            )
        ).all()
        assert sorted(history) == [("POST", 1), ("POST", 1)]
        targets = conn.execute(
            select(ReferenceIndex.target_id).where(
                ReferenceIndex.res_type == "AuditEvent",
                ReferenceIndex.param == "entity",
                ReferenceIndex.resource_pk.in_([row.pk for row in stored]),
            )
        ).scalars()
        assert {r["id"] for r in resources} <= set(targets)
    assert all(row.content["meta"]["versionId"] == "1" for row in stored)


def test_marked_lines_fast_join_equals_escaping_each_value() -> None:
    samples: list[object] = ["x", None, "tab\there", "nl\n", "back\\slash", "\x01", "\x02", "\\N"]
    samples += [1.5, datetime(2024, 5, 1), True, "\r", "王"]
    for value in samples:
        rows: list[tuple[object, ...]] = [("plain", None, value), (value, None, "z")]
        expected = "".join(
            copytext.PK_MARK + "\t" + "\t".join(copytext.field(v) for v in r) + "\n" for r in rows
        )
        assert copytext.marked_lines(rows) == expected, value
    assert copytext.marked_lines([]) == ""


def test_index_tuples_are_the_index_rows_in_table_column_order() -> None:
    """The bulk path's tuples hold exactly the store's index rows, column for column."""
    resources = synthea_resources(1) + synthea_resources(2)
    kinds: set[str] = set()
    for resource in resources:
        expected = {
            kind: [tuple(row[c] for c in index_columns(kind)) for row in rows]
            for kind, rows in extract_index_rows(resource).items()
            if rows
        }
        assert extract_index_tuples(resource) == expected
        kinds.update(expected)
    assert kinds >= {"string", "token", "date", "reference", "quantity"}
