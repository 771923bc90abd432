"""The real-time match on Patient writes: keys, decisions, links, review queue, notes (both DBs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.systems import RESIDENT_ID
from yilian.mpi import realtime
from yilian.mpi.models import BlockingKeyRow
from yilian.mpi.review import list_items
from yilian.mpi.review.models import ReviewRow
from yilian.mpi.store_cli import rebuild_index
from yilian.mpi.trained import (
    current_model,
    forget_models,
    save_model,
    store_records,
    train_model,
)

CTX = RequestContext.system("system/test-registration")
VALID_ID = "11010519491231002X"  # GB 11643's worked example (china-rules.md §6)


def person(name: str, birth: str = "1949-12-31", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
        "gender": "female",
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": "13812345678"}],
        "address": [{"text": "上海市长宁区华阳路街道愚园路100弄5号"}],
    }
    body.update(extra)
    return body


@pytest.fixture
def runtime(engine: Engine) -> Runtime:
    runtime = Runtime(engine, "http://testserver/fhir")
    realtime.install(runtime)
    return runtime


def write(runtime: Runtime, body: dict[str, Any], pid: str | None = None) -> tuple[str, str]:
    """Create (or update ``pid``); the new id and the X-Patient-Match note."""
    from yilian.fhir.notes import headers_for

    with runtime.transaction(CTX) as service:
        if pid is None:
            result = service.store.create(body)
        else:
            result = service.store.update("Patient", pid, {**body, "id": pid})
        note = headers_for(service.session, result.reference).get(realtime.HEADER, "")
        return str(result.resource["id"]), note


def read(runtime: Runtime, pid: str) -> dict[str, Any]:
    with runtime.transaction(CTX) as service:
        return dict(service.store.read("Patient", pid, audit=False))


def links(resource: dict[str, Any]) -> list[str]:
    return [link["other"]["reference"] for link in resource.get("link", [])]


def test_a_re_registration_is_linked_to_the_golden_record_both_ways(runtime: Runtime) -> None:
    first, note = write(runtime, person("陈秀英"))
    assert note.startswith("separate; candidates=0")
    # a homophone typo in the given name, the same phone, address and birth date
    second, note = write(runtime, person("陈秀瑛"))
    assert note.startswith(f"linked; golden=Patient/{first}; probability=")
    assert links(read(runtime, second)) == [f"Patient/{first}"]
    assert links(read(runtime, first)) == [f"Patient/{second}"]
    # a third registration joins the same person through its golden record
    third, note = write(runtime, person("陈秀英", telecom=[]))
    assert f"golden=Patient/{first}" in note
    assert sorted(links(read(runtime, first))) == sorted([f"Patient/{second}", f"Patient/{third}"])


def test_the_same_valid_resident_id_is_certain_whatever_the_names(runtime: Runtime) -> None:
    rid = [{"system": RESIDENT_ID, "value": VALID_ID}]
    first, _ = write(runtime, person("陈秀英", identifier=rid))
    other = person("林美华", birth="1950-01-01", identifier=rid, telecom=[], address=[])
    second, note = write(runtime, other)
    assert note.startswith(f"linked; golden=Patient/{first}; probability=1.0000")
    assert links(read(runtime, second)) == [f"Patient/{first}"]


def test_a_twin_goes_to_review_not_to_a_link(runtime: Runtime) -> None:
    """Same surname, phone, address and birth date, a different given name: the cap of the model
    (docs/mpi.md step 4) keeps the pair in the review band."""
    first, _ = write(runtime, person("陈秀英"))
    second, note = write(runtime, person("陈建国", gender="male"))
    assert note.startswith("review;") and note.endswith("review=1")
    assert "link" not in read(runtime, second)
    with runtime.transaction(CTX) as service:
        (item,) = list_items(service.session)
        assert {item.patient_a, item.patient_b} == {first, second}
        assert item.source == "realtime" and 0.05 <= item.probability < 0.95
        assert [c["name"] for c in item.comparisons][:2] == ["surname", "given"]


def test_a_sibling_or_parent_is_kept_apart(runtime: Runtime) -> None:
    """Same surname, phone and address, but a different given name AND birth date: a household
    member, not a mistyped registration — separate, nothing queued (``separate_when_all``)."""
    write(runtime, person("陈秀英"))
    second, note = write(runtime, person("陈建国", birth="1975-03-08", gender="male"))
    assert note.startswith("separate;") and note.endswith("review=0")
    assert "link" not in read(runtime, second)
    with runtime.transaction(CTX) as service:
        assert list_items(service.session) == []


def test_a_stranger_is_separate_and_nothing_is_queued(runtime: Runtime) -> None:
    write(runtime, person("陈秀英"))
    _, note = write(
        runtime,
        person("李国强", birth="1990-07-01", telecom=[], address=[{"text": "上海市浦东新区"}]),
    )
    assert note == "separate; candidates=0; review=0"
    with runtime.transaction(CTX) as service:
        assert list_items(service.session) == []


def test_a_pair_a_steward_kept_apart_is_not_linked_again(runtime: Runtime) -> None:
    first, _ = write(runtime, person("陈秀英"))
    second, _ = write(runtime, person("陈秀英", birth="1949-12-30", telecom=[]))
    assert links(read(runtime, second)) == [f"Patient/{first}"]
    unlinked = {pid: {**read(runtime, pid), "link": []} for pid in (first, second)}
    with runtime.transaction(CTX) as service:  # a steward's unlink and "not the same person"
        for pid, content in unlinked.items():
            service.store.update("Patient", pid, content)
        service.session.add(
            ReviewRow(
                patient_a=min(first, second), patient_b=max(first, second), probability=0.99,
                match_weight=9.0, comparisons=[], source="realtime", status="not-linked",
                created=datetime(2026, 11, 23), updated=datetime(2026, 11, 23),
            )
        )  # fmt: skip
    # the registration is corrected (its phone added): matched again, the kept-apart pair stays
    _, note = write(runtime, person("陈秀英", birth="1949-12-30"), pid=second)
    assert note == "separate; candidates=0; review=0"
    assert links(read(runtime, second)) == []


def test_keys_follow_updates_and_deletes_and_unchanged_identity_is_not_rematched(
    runtime: Runtime, engine: Engine
) -> None:
    pid, _ = write(runtime, person("陈秀英"))

    def keys() -> set[int]:
        with runtime.transaction(CTX) as service:
            rows = service.session.execute(
                select(BlockingKeyRow.key).where(BlockingKeyRow.patient_id == pid)
            )
            return set(rows.scalars())

    before = keys()
    assert len(before) >= 6  # phone, name + year, names + date, name + address, ...
    _, note = write(runtime, {**person("陈秀英"), "active": True}, pid=pid)
    assert note == ""  # nothing the matcher reads changed
    write(runtime, person("陈秀英", telecom=[{"system": "phone", "value": "13900000000"}]), pid)
    after = keys()
    assert after != before and len(after) == len(before)
    with runtime.transaction(CTX) as service:
        service.store.delete("Patient", pid)
    assert keys() == set()
    # the bulk path: rebuild every key from the store
    other, _ = write(runtime, person("林美华"))
    with runtime.transaction(CTX) as service:
        service.session.execute(BlockingKeyRow.__table__.delete())
    assert rebuild_index(engine) >= 6
    with runtime.transaction(CTX) as service:
        ids = set(service.session.execute(select(BlockingKeyRow.patient_id)).scalars())
    assert ids == {other}


def test_a_transaction_bundle_entry_reports_the_match(runtime: Runtime) -> None:
    first, _ = write(runtime, person("陈秀英"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:4f0c7f4e-8d1b-4c39-9e66-2f1c55d5a001",
                "resource": person("陈秀瑛"),
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    response = runtime.process_bundle(CTX, "transaction", bundle)
    outcome = response["entry"][0]["response"]["outcome"]
    assert outcome["issue"][0]["severity"] == "information"
    assert outcome["issue"][0]["diagnostics"].startswith(
        f"X-Patient-Match: linked; golden=Patient/{first}"
    )


def test_train_from_the_store_replaces_the_shipped_model(runtime: Runtime) -> None:
    for k, name in enumerate(["陈秀英", "林美华", "王建国", "张伟", "王芳", "李娜"]):
        write(runtime, person(name, birth=f"19{50 + k}-0{k + 1}-1{k}", telecom=[], address=[]))
    with runtime.transaction(CTX) as service:
        assert current_model(service.session).trained_at is None  # shipped
        model, _ = train_model(store_records(service.session))
        save_model(service.session, model)
    try:
        with runtime.transaction(CTX) as service:
            trained = current_model(service.session)
            assert trained.trained_at is not None and trained.records == 6
            assert trained.term_frequencies["surname:chars"].counts == {"王": 2}
    finally:
        forget_models()  # the next test's emptied database has no trained model


BAD_CHECK = "110105194912310021"  # the worked example with its check character changed


def test_a_bad_resident_id_is_refused_naming_the_element_and_rule(runtime: Runtime) -> None:
    from yilian.fhir.errors import FhirError

    body = person("陈秀英", identifier=[{"system": RESIDENT_ID, "value": BAD_CHECK}])
    with pytest.raises(FhirError) as refused:
        write(runtime, body)
    (issue,) = refused.value.issues
    assert refused.value.status == 422
    assert issue.expression == "Patient.identifier[0].value"
    assert issue.rule == "gb11643-check-digit"
    impossible = person(
        "陈秀英", identifier=[{"system": RESIDENT_ID, "value": "110105194902300028"}]
    )
    with pytest.raises(FhirError) as refused:
        write(runtime, impossible)
    assert refused.value.issues[0].rule == "gb11643-birth-date"  # 30 February


def test_a_legacy_15_digit_number_is_accepted_and_matches_its_18_digit_form(
    runtime: Runtime,
) -> None:
    first, _ = write(
        runtime, person("陈秀英", identifier=[{"system": RESIDENT_ID, "value": VALID_ID}])
    )
    legacy = VALID_ID[:6] + VALID_ID[8:17]  # 19 dropped from the year, no check character
    other = person("林美华", birth="1950-01-01", telecom=[], address=[])
    _, note = write(runtime, {**other, "identifier": [{"system": RESIDENT_ID, "value": legacy}]})
    assert note.startswith(f"linked; golden=Patient/{first}; probability=1.0000")


def test_unverified_mode_keeps_a_bad_number_marked_and_never_matches_on_it(
    runtime: Runtime,
) -> None:
    from yilian.mpi.resident_id import is_unverified

    runtime.resident_ids = "unverified"
    bad = [{"system": RESIDENT_ID, "value": BAD_CHECK}]
    first, _ = write(runtime, person("陈秀英", identifier=bad))
    (stored,) = read(runtime, first)["identifier"]
    assert stored["value"] == BAD_CHECK and is_unverified(stored)
    # the same bad number on a different person: no certain match, nothing in common else
    stranger = person("李国强", birth="1990-07-01", telecom=[], address=[], identifier=bad)
    _, note = write(runtime, stranger)
    assert note.startswith("separate;")


def test_the_rest_api_answers_with_the_match_header(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from tests.fhir.conftest import auth_header, bearer_token
    from yilian.app import create_app

    app = create_app(engine=engine, base_url="http://testserver", migrate=False)
    with TestClient(app, headers=auth_header(bearer_token(engine, "registrar"))) as http:
        first = http.post("/fhir/Patient", json=person("陈秀英"))
        assert first.status_code == 201
        assert first.headers["x-patient-match"] == "separate; candidates=0; review=0"
        second = http.post("/fhir/Patient", json=person("陈秀瑛"))
        golden = first.json()["id"]
        assert second.headers["x-patient-match"].startswith(f"linked; golden=Patient/{golden}")
        assert links(second.json()) == [f"Patient/{golden}"]
        pid = second.json()["id"]
        same = http.put(f"/fhir/Patient/{pid}", json={**second.json(), "active": True})
        assert same.status_code == 200 and "x-patient-match" not in same.headers
