"""Workers that write their own chunks (PostgreSQL): commit order, repeated ids, strict stops."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from tests.fhir.bulk.conftest import write_ndjson
from yilian.audit.models import AuditEntryRow
from yilian.audit.verify import verify
from yilian.db import unit_of_work
from yilian.fhir.bulk.direct import ChunkOutcome, ChunkTask, load_chunk
from yilian.fhir.bulk.importer import LoadAborted, Loader, LoadOptions
from yilian.fhir.bulk.loader import BatchWriter
from yilian.fhir.bulk.models import BulkFileRow
from yilian.fhir.bulk.turns import Turns
from yilian.fhir.models import ResourceRow, ResourceVersionRow, TokenIndex
from yilian.fhir.runtime import RequestContext, Runtime

PATIENTS = ResourceRow.res_type == "Patient"


def patient(number: int, gender: str) -> dict[str, object]:
    return {"resourceType": "Patient", "id": f"p{number}", "gender": gender}


def scalar(engine: Engine, query: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())  # type: ignore[call-overload]


def test_ids_repeated_across_chunks_in_flight_get_versions_in_input_order(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    # Chunks of 10 lines; every id occurs in two neighbouring chunks (in flight together).
    lines = [patient(i % 15, "male") for i in range(15)]
    lines += [patient(i % 15, "female") for i in range(15)]
    lines += [patient(i % 15, "other") for i in range(15)]
    path = write_ndjson(tmp_path / "repeat.ndjson", lines)
    options = LoadOptions(workers=2, batch_size=10)
    report = Loader(runtime, RequestContext.system(), options).load([path])
    assert report.loaded == 45 and report.updated == 30
    with engine.connect() as conn:
        rows = conn.execute(
            select(ResourceRow.res_id, ResourceRow.version_id, ResourceRow.content).where(PATIENTS)
        ).all()
        genders = conn.execute(
            select(TokenIndex.code).where(TokenIndex.param == "gender")
        ).scalars()
        assert sorted(genders) == ["other"] * 15  # the old versions' index rows are gone
    assert len(rows) == 15
    assert {(version, content["gender"]) for _id, version, content in rows} == {(3, "other")}
    history = (
        select(func.count())
        .select_from(ResourceVersionRow)
        .where(ResourceVersionRow.res_type == "Patient")
    )
    assert scalar(engine, history) == 45
    imports = select(func.count()).select_from(AuditEntryRow).where(AuditEntryRow.event == "import")
    assert scalar(engine, imports) == 5
    with runtime.sessions() as session:
        assert verify(session).ok


def test_strict_stop_commits_the_chunks_before_and_none_after(
    runtime: Runtime, engine: Engine, tmp_path: Path
) -> None:
    good = [patient(i, "male") for i in range(60)]
    path = tmp_path / "strict.ndjson"
    text = [json.dumps(r) for r in good[:25]] + ["{broken"] + [json.dumps(r) for r in good[25:]]
    path.write_text("\n".join(text) + "\n")
    options = LoadOptions(workers=2, batch_size=10, strict=True)
    with pytest.raises(LoadAborted, match=r"strict.ndjson:26"):
        Loader(runtime, RequestContext.system(), options).load([path])
    assert scalar(engine, select(func.count()).select_from(ResourceRow).where(PATIENTS)) == 20
    with engine.connect() as conn:
        line = conn.execute(select(BulkFileRow.line)).scalar_one()
    assert line == 20  # a re-run continues at the chunk that failed


def _task(seq: int, lines: list[tuple[int, bytes]], file_pk: int, url: str) -> ChunkTask:
    return ChunkTask(
        seq=seq,
        database_url=url,
        lines=lines,
        validate=True,
        expected_type=None,
        strict=False,
        ctx=RequestContext.system(),
        source=f"test chunk {seq}",
        file_pk=file_pk,
        offset=seq + 1,
        line=lines[-1][0],
        job_id=None,
    )


def test_a_later_chunk_holding_an_earlier_chunks_row_yields(
    runtime: Runtime, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("workers write their own chunks on PostgreSQL only")
    with unit_of_work(runtime.sessions) as session:
        row = BulkFileRow(
            path="x", fingerprint="f", offset=0, line=0, loaded=0, rejected=0, done=False,
            job_id=None, updated=datetime.now(UTC).replace(tzinfo=None),
        )  # fmt: skip
        session.add(row)
        session.flush()
        file_pk = row.pk
    url = engine.url.render_as_string(hide_password=False)
    first = [(1, json.dumps(patient(1, "male")).encode())]
    second = [(2, json.dumps(patient(1, "female")).encode())]
    turns = Turns(multiprocessing.get_context("spawn"))
    outcomes: dict[int, ChunkOutcome] = {}

    def run(seq: int, lines: list[tuple[int, bytes]]) -> None:
        outcomes[seq] = load_chunk(_task(seq, lines, file_pk, url), turns, runtime.sessions)

    later = threading.Thread(target=run, args=(1, second))
    later.start()
    time.sleep(1.0)  # chunk 1 has inserted p1 and waits for its turn, holding the insert
    run(0, first)
    later.join(timeout=60)
    assert outcomes[0].written and outcomes[1].written
    with engine.connect() as conn:
        version, content = conn.execute(
            select(ResourceRow.version_id, ResourceRow.content).where(PATIENTS)
        ).one()
        position = conn.execute(select(BulkFileRow.line)).scalar_one()
    assert (version, content["gender"], position) == (2, "female", 2)


def test_chunks_commit_without_waiting_for_the_disk_and_the_setting_stays_in_the_chunk(
    runtime: Runtime, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ADR 0017: a chunk's transaction runs with synchronous_commit off (SET LOCAL); the file's
    # final "done" commit and every later transaction on the same connections wait as usual.
    if engine.dialect.name != "postgresql":
        pytest.skip("workers write their own chunks on PostgreSQL only")
    seen: list[str] = []
    original = BatchWriter.write_audit

    def spy(self: BatchWriter, result: Any, items: Any) -> None:
        seen.append(str(self.session.execute(text("SHOW synchronous_commit")).scalar_one()))
        original(self, result, items)

    monkeypatch.setattr(BatchWriter, "write_audit", spy)
    path = write_ndjson(tmp_path / "async.ndjson", [patient(i, "male") for i in range(25)])
    options = LoadOptions(workers=0, batch_size=10)
    report = Loader(runtime, RequestContext.system(), options).load([path])
    assert report.loaded == 25
    assert seen == ["off", "off", "off"]
    with runtime.sessions() as session:  # the pool's connections are back to the default
        assert session.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
        assert session.execute(select(BulkFileRow.done)).scalar_one() is True
