"""Tampering with the stored chain is found, at the right entry, with the right diagnosis.

Each test edits the table the way someone with database access could, then verifies.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from yilian.audit import Anchor, AuditRecord, Problem, VerifyReport, verify
from yilian.audit.canonical import entry_hash
from yilian.db import session_factory

from .helpers import all_rows, fill, sql

N = 12


def _verify(engine: Engine, **options: object) -> VerifyReport:
    with session_factory(engine)() as session:
        return verify(session, **options)  # type: ignore[arg-type]


def _drop_patient_links(engine: Engine) -> None:
    # The patient index references entries; a tamperer moving entries removes it first.
    sql(engine, "DELETE FROM audit_patient")


def _write(engine: Engine, record: AuditRecord) -> None:
    """Overwrite or insert the row for record.seq with exactly these values."""
    sql(engine, "DELETE FROM audit_entry WHERE seq = :seq", seq=record.seq)
    sql(
        engine,
        "INSERT INTO audit_entry (seq, recorded, actor, actor_kind, actor_role, action, event,"
        " resources, patients, purpose, outcome, outcome_desc, source_address, request_id,"
        " query, prev_hash, hash) VALUES (:seq, :recorded, :actor, :actor_kind, :actor_role,"
        " :action, :event, :resources, :patients, :purpose, :outcome, :outcome_desc,"
        " :source_address, :request_id, :query, :prev_hash, :hash)",
        **{
            **record.__dict__,
            "resources": _json(record.resources),
            "patients": _json(record.patients),
        },
    )


def _json(values: list[str]) -> str:
    return json.dumps(values)


def _rehashed(record: AuditRecord, **changes: object) -> AuditRecord:
    changed = replace(record, **changes)  # type: ignore[arg-type]
    return replace(changed, hash=entry_hash(changed.__dict__))


@pytest.fixture
def chain(engine: Engine) -> list[AuditRecord]:
    records = fill(engine, N)
    _drop_patient_links(engine)
    return records


def test_untouched_chain_verifies(engine: Engine, chain: list[AuditRecord]) -> None:
    report = _verify(engine)
    assert (report.ok, report.checked, report.head_seq, report.problem) == (True, N, N, None)


def test_edited_field_is_found_at_its_entry(engine: Engine, chain: list[AuditRecord]) -> None:
    sql(engine, "UPDATE audit_entry SET purpose = 'HRESCH' WHERE seq = 5")
    report = _verify(engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 5, Problem.MODIFIED)
    assert report.checked == 4


def test_edited_and_rehashed_entry_is_found_through_its_successor(
    engine: Engine, chain: list[AuditRecord]
) -> None:
    _write(engine, _rehashed(chain[4], actor="Practitioner/someone-else"))
    report = _verify(engine)
    assert (report.first_bad_seq, report.problem) == (5, Problem.MODIFIED)
    assert "re-hashed" in (report.detail or "")


def test_deleted_entry_leaves_a_gap(engine: Engine, chain: list[AuditRecord]) -> None:
    sql(engine, "DELETE FROM audit_entry WHERE seq = 7")
    report = _verify(engine)
    assert (report.first_bad_seq, report.problem) == (7, Problem.DELETED)


def test_deleted_entry_with_later_entries_renumbered(
    engine: Engine, chain: list[AuditRecord]
) -> None:
    sql(engine, "DELETE FROM audit_entry WHERE seq = 7")
    for seq in range(8, N + 1):
        sql(engine, "UPDATE audit_entry SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    report = _verify(engine)
    assert (report.first_bad_seq, report.problem) == (7, Problem.DELETED)


@pytest.mark.parametrize(("first", "second"), [(3, 9), (4, 5), (2, N)])
def test_swapped_entries_are_reported_as_reordered(
    engine: Engine, chain: list[AuditRecord], first: int, second: int
) -> None:
    sql(engine, "UPDATE audit_entry SET seq = -1 WHERE seq = :a", a=first)
    sql(engine, "UPDATE audit_entry SET seq = :a WHERE seq = :b", a=first, b=second)
    sql(engine, "UPDATE audit_entry SET seq = :b WHERE seq = -1", b=second)
    report = _verify(engine)
    assert (report.first_bad_seq, report.problem) == (first, Problem.REORDERED)


def test_forged_entry_spliced_in_is_reported_as_inserted(
    engine: Engine, chain: list[AuditRecord]
) -> None:
    for seq in range(N, 4, -1):  # make room at 5, as a forger must: seq is the primary key
        sql(engine, "UPDATE audit_entry SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    # A well-made forgery: correct seq, correctly linked to entry 4, correctly hashed.
    forged = _rehashed(chain[4], actor="Practitioner/alibi", prev_hash=chain[3].hash)
    _write(engine, forged)
    report = _verify(engine)
    assert (report.first_bad_seq, report.problem) == (5, Problem.INSERTED)
    assert report.checked == 5  # the forgery itself passed the per-entry checks


def test_forged_entry_with_invented_link_and_hash(engine: Engine, chain: list[AuditRecord]) -> None:
    forged = replace(chain[-1], seq=N + 1, prev_hash="ab" * 32, hash="cd" * 32)
    _write(engine, forged)
    report = _verify(engine)
    assert (report.first_bad_seq, report.problem) == (N + 1, Problem.BROKEN)


def test_rewritten_tail_passes_alone_but_not_against_an_anchor(
    engine: Engine, chain: list[AuditRecord]
) -> None:
    anchor = Anchor(N, chain[-1].hash)
    prev = chain[8].hash
    for record in chain[9:]:  # rewrite 10..N and re-hash them all consistently
        forged = _rehashed(record, prev_hash=prev, purpose="HMARKT")
        _write(engine, forged)
        prev = forged.hash
    assert _verify(engine).ok  # the documented limit of an unkeyed chain
    report = _verify(engine, anchor=anchor)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, N, Problem.ANCHOR)


def test_deleted_tail_is_found_against_an_anchor(engine: Engine, chain: list[AuditRecord]) -> None:
    sql(engine, "DELETE FROM audit_entry WHERE seq > 9")
    assert _verify(engine).ok
    report = _verify(engine, anchor=Anchor(N, chain[-1].hash))
    assert (report.first_bad_seq, report.problem) == (10, Problem.DELETED)


def test_windows_and_batches_agree_with_one_walk(engine: Engine, chain: list[AuditRecord]) -> None:
    seen: list[int] = []
    whole = _verify(engine, batch=5, progress=seen.append)
    assert whole.ok and whole.checked == N and seen == [5, 5, 2]
    first = _verify(engine, end=6, batch=4)
    rest = _verify(engine, start=7, batch=4)
    assert (first.ok, first.checked, first.head_seq) == (True, 6, 6)
    assert (rest.ok, rest.checked, rest.head_seq) == (True, N - 6, N)
    sql(engine, "UPDATE audit_entry SET outcome = 8 WHERE seq = 9")
    assert _verify(engine, start=7).first_bad_seq == 9
    assert _verify(engine, start=1, end=8).ok


def test_missing_predecessor_of_start_is_reported(engine: Engine, chain: list[AuditRecord]) -> None:
    sql(engine, "DELETE FROM audit_entry WHERE seq = 6")
    report = _verify(engine, start=7)
    assert (report.first_bad_seq, report.problem) == (6, Problem.DELETED)


def test_stored_rows_are_what_append_returned(engine: Engine, chain: list[AuditRecord]) -> None:
    assert all_rows(session_factory(engine)) == chain
