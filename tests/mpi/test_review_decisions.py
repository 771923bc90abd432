"""Link, not-link, merge and their undo: FHIR writes, the decision log and the audit chain."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from yilian.audit.models import AuditEntryRow
from yilian.fhir.errors import FhirError
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.mpi.review import ComparisonEvidence, enqueue_candidate
from yilian.mpi.review.decisions import decide, decisions_of, undo

CTX = RequestContext.system("system/test-steward")


def _patient(pid: str, family: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": ["伟"]}],
        "birthDate": "1970-01-02",
        **extra,
    }


@pytest.fixture
def runtime(engine: Engine) -> Runtime:
    runtime = Runtime(engine, "http://testserver/fhir")
    with runtime.transaction(CTX) as service:
        service.store.update("Patient", "a", _patient("a", "陈"))
        other = {"other": {"reference": "Patient/z"}, "type": "seealso"}
        service.store.update("Patient", "b", _patient("b", "陳", link=[other]))
        enqueue_candidate(
            service.session, "a", "b", probability=0.6, match_weight=0.6,
            comparisons=[ComparisonEvidence("surname", 2, "same pinyin", 3.1)], source="batch",
        )  # fmt: skip
    return runtime


def _item_id(runtime: Runtime) -> int:
    with runtime.transaction(CTX) as service:
        from yilian.mpi.review import list_items

        return list_items(service.session, status=None)[0].id


def _read(runtime: Runtime, pid: str) -> dict[str, Any]:
    with runtime.transaction(CTX) as service:
        return dict(service.store.read("Patient", pid, audit=False))


def _links(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k["other"]["reference"], k["type"]) for k in resource.get("link", [])]


def test_link_then_undo_restores_both_patients(runtime: Runtime) -> None:
    item = _item_id(runtime)
    with runtime.transaction(CTX) as service:
        done = decide(service, item, "link", "user/steward")
        assert done.status == "linked"
    assert _links(_read(runtime, "a")) == [("Patient/b", "seealso")]
    assert _links(_read(runtime, "b")) == [("Patient/z", "seealso"), ("Patient/a", "seealso")]
    with runtime.transaction(CTX) as service:
        assert undo(service, item, "user/steward").status == "open"
    a, b = _read(runtime, "a"), _read(runtime, "b")
    assert "link" not in a and a["meta"]["versionId"] == "3"
    assert _links(b) == [("Patient/z", "seealso")] and b["meta"]["versionId"] == "3"
    with runtime.transaction(CTX) as service:
        log = decisions_of(service.session, item)
        assert [(d.action, d.undone) for d in log] == [("link", True), ("undo", False)]
        assert log[1].changes == [
            {"reference": "Patient/a", "before": 2, "after": 3},
            {"reference": "Patient/b", "before": 2, "after": 3},
        ]


def test_merge_marks_the_duplicate_and_unmerge_reactivates_it(runtime: Runtime) -> None:
    item = _item_id(runtime)
    with runtime.transaction(CTX) as service:
        assert decide(service, item, "merge", "user/steward", survivor="a").status == "merged"
    survivor, duplicate = _read(runtime, "a"), _read(runtime, "b")
    assert _links(survivor) == [("Patient/b", "replaces")]
    assert _links(duplicate) == [("Patient/z", "seealso"), ("Patient/a", "replaced-by")]
    assert duplicate["active"] is False
    with runtime.transaction(CTX) as service:
        undo(service, item, "user/steward")
    restored = _read(runtime, "b")
    assert "active" not in restored and _links(restored) == [("Patient/z", "seealso")]
    with runtime.transaction(CTX) as service:
        entries = service.session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.event == "operation")
        ).all()
        assert [e.query for e in entries] == [f"$mpi-merge review={item}",
                                              f"$mpi-undo-merge review={item}"]  # fmt: skip
        assert entries[0].patients == ["Patient/a", "Patient/b"]


def test_not_link_writes_nothing_and_is_remembered(runtime: Runtime) -> None:
    item = _item_id(runtime)
    with runtime.transaction(CTX) as service:
        decide(service, item, "not-link", "user/steward")
        again = enqueue_candidate(
            service.session, "b", "a", probability=0.9, match_weight=3.0,
            comparisons=[], source="realtime",
        )  # fmt: skip
        assert again.status == "not-linked"
    assert _read(runtime, "a")["meta"]["versionId"] == "1"


def test_undo_refuses_when_a_patient_changed_since(runtime: Runtime) -> None:
    item = _item_id(runtime)
    with runtime.transaction(CTX) as service:
        decide(service, item, "link", "user/steward")
    changed = _read(runtime, "a")
    changed["telecom"] = [{"system": "phone", "value": "13800000000"}]
    with runtime.transaction(CTX) as service:
        service.store.update("Patient", "a", changed)
    with pytest.raises(FhirError) as error, runtime.transaction(CTX) as service:
        undo(service, item, "user/steward")
    assert "mpi-undo-unchanged" in str(error.value.outcome())


@pytest.mark.parametrize(
    ("action", "survivor", "rule"),
    [("fuse", None, "mpi-decision"), ("merge", "q", "mpi-merge-survivor")],
)
def test_bad_decisions_name_the_rule(
    runtime: Runtime, action: str, survivor: str | None, rule: str
) -> None:
    item = _item_id(runtime)
    with pytest.raises(FhirError) as error, runtime.transaction(CTX) as service:
        decide(service, item, action, "user/steward", survivor=survivor)
    assert rule in str(error.value.outcome())


def test_a_decided_item_must_be_undone_before_a_new_decision(runtime: Runtime) -> None:
    item = _item_id(runtime)
    with runtime.transaction(CTX) as service:
        decide(service, item, "not-link", "user/steward")
    with pytest.raises(FhirError) as error, runtime.transaction(CTX) as service:
        decide(service, item, "link", "user/steward")
    assert error.value.status == 409


def test_link_joins_the_golden_records_of_both_persons(runtime: Runtime) -> None:
    """a already belongs to a person whose golden record is g: b joins g, a is not rewritten."""
    with runtime.transaction(CTX) as service:
        to_a = {"other": {"reference": "Patient/a"}, "type": "seealso"}
        to_h = {"other": {"reference": "Patient/h"}, "type": "seealso"}
        service.store.update("Patient", "g", _patient("g", "陈", link=[to_a, to_h]))
        service.store.update("Patient", "h", _patient("h", "陈"))
    item = _item_id(runtime)
    with runtime.transaction(CTX) as service:
        decide(service, item, "link", "user/steward")
        changes = decisions_of(service.session, item)[0].changes
    assert [c["reference"] for c in changes] == ["Patient/g", "Patient/b"]
    assert ("Patient/b", "seealso") in _links(_read(runtime, "g"))
    assert ("Patient/g", "seealso") in _links(_read(runtime, "b"))
    assert _read(runtime, "a")["meta"]["versionId"] == "1"
    with runtime.transaction(CTX) as service:
        undo(service, item, "user/steward")
        assert decide(service, item, "link", "user/steward").status == "linked"
        undo(service, item, "user/steward")
    assert ("Patient/b", "seealso") not in _links(_read(runtime, "g"))
