"""The real-time match: every Patient create/update finds its person within the same request.

A store write hook (``install``) runs on each Patient write, in the write's transaction:

1. the incoming Patient's blocking keys (``keys.record_keys``) select its candidates through
   ``mpi_blocking_key`` — keys shared by more than ``MAX_BLOCK`` Patients are skipped, as in the
   batch job — and the keys are rewritten for the Patient;
2. the candidates are scored with the stored model (``trained.current_model``: the store's
   parameters and term frequencies, else the shipped ones);
3. the decision, as the batch job's (docs/mpi.md "How a pair is scored"): a valid resident ID
   equal to a candidate's is certain; p >= ``UPPER_THRESHOLD`` links the Patient to the golden
   record of the candidate's person (``Patient.link`` seealso both ways, the golden record
   written as the server); ``LOWER_THRESHOLD`` <= p < upper queues the pair for a steward
   (``yilian.mpi.review.enqueue_candidate``); below, nothing;
4. the outcome goes back to the client as the ``X-Patient-Match`` header (or, in a Bundle, the
   entry's ``response.outcome``), e.g. ``linked; golden=Patient/p1; probability=1.0000``.

Not matched again: an update that leaves every matched field as it was (a link written by a
steward, a changed ``active`` flag), and the golden record's own update by this hook. A Patient
that already belongs to a person is not auto-linked to another one; such candidates go to review.
A pair a steward decided as "not the same person" is never linked or proposed again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy import TextualSelect, and_, or_, select, text
from sqlalchemy.orm import Session

from yilian.db import JsonDocument
from yilian.fhir.notes import add_note
from yilian.fhir.store import ResourceStore, WriteEvent
from yilian.mpi.keys import matcher_row, patient_records, record_keys, replace_keys
from yilian.mpi.links import golden_of, link_targets, person_of
from yilian.mpi.model import LOWER_THRESHOLD, UPPER_THRESHOLD, Scored
from yilian.mpi.review import ComparisonEvidence, enqueue_candidate
from yilian.mpi.review.models import ReviewRow
from yilian.mpi.trained import StoredModel, current_model
from yilian.referral.booking import as_system

HEADER = "X-Patient-Match"
MAX_BLOCK = 1000  # as chinese_spec().max_block: a key this common separates nobody


@dataclass
class Candidate:
    patient_id: str
    probability: float
    weight: float
    certain: bool
    evidence: list[ComparisonEvidence]


@dataclass
class MatchResult:
    """The scored candidates of one Patient, best first."""

    patient_id: str
    keys: list[int]
    candidates: list[Candidate] = field(default_factory=list)


@cache
def _candidates_sql(n_keys: int) -> TextualSelect:
    """The candidate query for ``n_keys`` keys, built once: the ORM construction of ten
    sub-selects cost more CPU than running them (profiled). It reads ``fhir_resource`` past the
    store layer (store-access): the index's own reading, not a disclosure — what a client
    learns is the link written and the X-Patient-Match header."""
    shared = " UNION ALL ".join(
        f"SELECT key, patient_id FROM (SELECT key, patient_id FROM mpi_blocking_key "
        f"WHERE key = :k{n} LIMIT {MAX_BLOCK + 1}) AS s{n}"
        for n in range(n_keys)
    )
    return text(
        f"WITH shared AS ({shared}), "
        f"common AS (SELECT key FROM shared GROUP BY key HAVING count(*) > {MAX_BLOCK}) "
        "SELECT content FROM fhir_resource WHERE res_type = 'Patient' AND NOT deleted "
        "AND res_id IN (SELECT patient_id FROM shared "
        "WHERE key NOT IN (SELECT key FROM common) AND patient_id <> :exclude)"
    ).columns(content=JsonDocument)


def candidates(session: Session, keys: list[int], exclude: str) -> list[dict[str, Any]]:
    """Live Patients sharing a blocking key, over keys held by at most ``MAX_BLOCK`` Patients:
    one statement (a round trip costs more than the look-ups on a busy server)."""
    if not keys:
        return []
    params: dict[str, Any] = {f"k{n}": key for n, key in enumerate(keys)}
    params["exclude"] = exclude
    rows = session.execute(_candidates_sql(len(keys)), params)
    return [content for (content,) in rows]


def _evidence(model: StoredModel, scored: Scored, k: int) -> list[ComparisonEvidence]:
    weights = model.parameters.weights()
    out = []
    for c, comparison in enumerate(model.spec.comparisons):
        level = int(scored.gamma[k, c])
        label = comparison.labels[level - 1] if level else "missing"
        out.append(ComparisonEvidence(comparison.name, level, label, float(weights[c][level])))
    return out


def match_patient(session: Session, patient: dict[str, Any], model: StoredModel) -> MatchResult:
    """Score ``patient`` against its candidates in the store (nothing is written)."""
    pid = str(patient["id"])
    records = patient_records([patient])
    keys = record_keys(records, 0, model.spec.blocking)
    result = MatchResult(pid, keys)
    found = candidates(session, keys, pid)
    if not found:
        return result
    records = patient_records([patient, *found])
    j = np.arange(1, len(records), dtype=np.int64)
    i = np.zeros(len(j), dtype=np.int64)
    scored = model.matcher.score(records, i, j, term_frequencies=model.term_frequencies)
    for k in np.argsort(-scored.weight, kind="stable").tolist():
        weight = float(scored.weight[k])
        result.candidates.append(
            Candidate(
                str(records.ids[j[k]]),
                float(scored.probability[k]),
                weight if math.isfinite(weight) else 1000.0,
                weight == math.inf,
                _evidence(model, scored, k),
            )
        )
    return result


def _kept_apart(session: Session, patient_id: str, others: list[str]) -> set[str]:
    """Candidates a steward decided are not this patient (``not-linked`` review items)."""
    if not others:
        return set()
    rows = session.execute(
        select(ReviewRow.patient_a, ReviewRow.patient_b).where(
            ReviewRow.status == "not-linked",
            or_(
                and_(ReviewRow.patient_a == patient_id, ReviewRow.patient_b.in_(others)),
                and_(ReviewRow.patient_b == patient_id, ReviewRow.patient_a.in_(others)),
            ),
        )
    )
    return {b if a == patient_id else a for a, b in rows}


@dataclass
class Outcome:
    decision: str  # linked | already-linked | review | separate
    golden: str | None = None
    probability: float | None = None
    candidates: int = 0
    review: int = 0

    def header(self) -> str:
        parts = [self.decision]
        if self.golden:
            parts.append(f"golden=Patient/{self.golden}")
        if self.probability is not None:
            parts.append(f"probability={self.probability:.4f}")
        parts += [f"candidates={self.candidates}", f"review={self.review}"]
        return "; ".join(parts)


def _link(other: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{other}"}, "type": "seealso"}


class MatchHook:
    """The write hook of one request (``install`` builds one per request)."""

    def __init__(self) -> None:
        self._writing_golden = False

    def __call__(self, event: WriteEvent) -> None:
        if event.res_type != "Patient" or self._writing_golden or event.res_id is None:
            return
        session = event.store.session
        if getattr(event, "deleted", False):
            replace_keys(session, event.res_id, [])
            return
        if event.previous is not None and matcher_row(event.previous) == matcher_row(
            event.resource
        ):
            return  # nothing the matcher reads changed: keys and decisions stand
        patient = {**event.resource, "id": event.res_id}
        model = current_model(session)
        result = match_patient(session, patient, model)
        replace_keys(session, event.res_id, result.keys)
        outcome = self._decide(event, patient, result)
        add_note(session, f"Patient/{event.res_id}", HEADER, outcome.header())

    def _decide(self, event: WriteEvent, patient: dict[str, Any], result: MatchResult) -> Outcome:
        session = event.store.session
        pid = result.patient_id
        apart = _kept_apart(session, pid, [c.patient_id for c in result.candidates])
        candidates = [c for c in result.candidates if c.patient_id not in apart]
        own = set(person_of(session, pid, {pid: patient})) if link_targets(patient) else {pid}
        outside = [c for c in candidates if c.patient_id not in own]
        outcome = Outcome("separate", candidates=len(candidates))
        best = outside[0] if outside else None
        if any(c.probability >= UPPER_THRESHOLD for c in candidates if c.patient_id in own):
            outcome.decision = "already-linked"
        elif best is not None and best.probability >= UPPER_THRESHOLD and own == {pid}:
            golden = self._link_to_person(event.store, pid, best.patient_id)
            event.resource["link"] = [*(event.resource.get("link") or []), _link(golden)]
            outcome = Outcome("linked", golden, best.probability, len(candidates))
            own |= set(person_of(session, golden))
        for c in candidates:
            if c.patient_id in own or c.probability < LOWER_THRESHOLD:
                continue
            enqueue_candidate(
                session,
                pid,
                c.patient_id,
                probability=min(c.probability, 1.0),
                match_weight=c.weight,
                comparisons=c.evidence,
                source="realtime",
            )
            outcome.review += 1
        if outcome.decision == "separate" and outcome.review:
            outcome.decision = "review"
            outcome.probability = outside[0].probability if outside else None
        return outcome

    def _link_to_person(self, store: ResourceStore, patient_id: str, candidate: str) -> str:
        """Link the golden record of ``candidate``'s person back to the new member; its id."""
        members = person_of(store.session, candidate)
        golden = golden_of(members)
        content = dict(members[golden])
        content["link"] = [*(content.get("link") or []), _link(patient_id)]
        self._writing_golden = True
        try:
            # As the server, past the user's guard: the golden record may be another facility's,
            # yet linking it to the new member is the index's rule, not the user's edit.
            system = as_system(store)
            system.update("Patient", golden, content)
            if system is not store:
                system.flush()
        finally:
            self._writing_golden = False
        return golden


def install(runtime: Any) -> None:
    """Add the matching hook to a runtime's write path (``yilian.app.create_app`` calls this)."""
    runtime.write_hooks.append(lambda ctx: MatchHook())
