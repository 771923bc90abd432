"""The match model the real-time path scores with: trained on the store's Patients, or shipped.

``yilian mpi train`` estimates the Chinese model (EM, no labels) on every Patient in the store and
saves the parameters with the term frequencies of surnames and given names in ``mpi_model``: the
TF adjustment needs the population's frequencies, which a handful of candidates cannot give.
Until a store has been trained, the model shipped in ``data/chinese-residents.json`` is used:
trained on a synthetic district of 35,000 residents with 30 % re-registrations
(``yilian synth --scale 0.05 --duplicates 0.3``), whose names follow the surname and given-name
frequencies of shared/domain (docs/mpi.md "Real-time matching").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

# arch: store-access — the patient index reads Patients to match them (server logic, not a
# disclosure: what a client learns is the link written and the X-Patient-Match header).
from yilian.fhir.models import ResourceRow
from yilian.mpi.chinese import COLUMNS, chinese_spec
from yilian.mpi.district import patient_row
from yilian.mpi.model import Matcher, ModelSpec, Parameters, TermFrequency, TrainingReport
from yilian.mpi.models import ModelRow
from yilian.mpi.parameters import parameters_dict, parameters_from_json
from yilian.mpi.records import Records, object_array

SHIPPED = "chinese-residents.json"


@dataclass(frozen=True)
class StoredModel:
    """Parameters plus the population's term frequencies, and where they came from."""

    spec: ModelSpec
    parameters: Parameters
    term_frequencies: dict[str, TermFrequency]
    records: int
    trained_at: datetime | None  # None: the shipped model

    @property
    def matcher(self) -> Matcher:
        return Matcher(self.spec, self.parameters)

    def as_json(self) -> dict[str, Any]:
        return {
            "parameters": parameters_dict(self.spec, self.parameters),
            "term_frequencies": _tf_json(self.term_frequencies),
            "records": self.records,
        }


def _tf_json(frequencies: dict[str, TermFrequency]) -> dict[str, Any]:
    return {
        column: {"total": tf.total, "counts": dict(tf.counts)} for column, tf in frequencies.items()
    }


def _tf_from_json(spec: ModelSpec, data: Any) -> dict[str, TermFrequency]:
    out = {}
    for comparison in spec.comparisons:
        column = comparison.tf_column
        if column is None:
            continue
        stored = data.get(column) if isinstance(data, dict) else None
        if not isinstance(stored, dict) or not isinstance(stored.get("counts"), dict):
            raise ValueError(f"term frequencies of {column!r} are missing from the stored model")
        out[column] = TermFrequency(int(stored["total"]), stored["counts"])
    return out


def _from_json(
    spec: ModelSpec, parameters: Any, frequencies: Any, records: int, at: datetime | None
) -> StoredModel:
    params = parameters_from_json(spec, json.dumps(parameters))
    return StoredModel(spec, params, _tf_from_json(spec, frequencies), records, at)


def shipped_model() -> StoredModel:
    text = (resources.files("yilian.mpi") / "data" / SHIPPED).read_text(encoding="utf-8")
    data = json.loads(text)
    return _from_json(
        chinese_spec(), data["parameters"], data["term_frequencies"], data["records"], None
    )


# The stored model per database, re-read when another process trains a new one (trained_at);
# the timestamp is looked up at most every RECHECK_SECONDS, not on every Patient write.
RECHECK_SECONDS = 60.0


@dataclass
class _Cached:
    model: StoredModel
    key: str  # the trained_at it was read for ("shipped": none)
    checked: float  # time.monotonic() of the last look-up


_cache: dict[str, _Cached] = {}  # database URL -> model


def current_model(session: Session) -> StoredModel:
    """The store's trained model, else the shipped one."""
    database = str(session.connection().engine.url)
    now = time.monotonic()
    cached = _cache.get(database)
    if cached is not None and now - cached.checked < RECHECK_SECONDS:
        return cached.model
    spec_name = chinese_spec().name
    stamp = session.scalar(select(ModelRow.trained_at).where(ModelRow.name == spec_name))
    key = stamp.isoformat() if stamp is not None else "shipped"
    if cached is None or cached.key != key:
        if stamp is None:
            model = shipped_model()
        else:
            row = session.get(ModelRow, spec_name)
            assert row is not None
            model = _from_json(
                chinese_spec(), row.parameters, row.term_frequencies, row.records, row.trained_at
            )
        cached = _Cached(model, key, now)
        _cache[database] = cached
    cached.checked = now
    return cached.model


def forget_models() -> None:
    """Drop the cached models (a database emptied under a running process: tests)."""
    _cache.clear()


def store_records(session: Session, *, batch: int = 5000) -> Records:
    """Every live Patient of the store as matcher records (ids = Patient ids)."""
    ids: list[str] = []
    rows: list[dict[str, str | None]] = []
    query = (
        select(ResourceRow.res_id, ResourceRow.content)
        .where(ResourceRow.res_type == "Patient", ResourceRow.deleted.is_(False))
        .execution_options(yield_per=batch)
    )
    for res_id, content in session.execute(query):
        ids.append(res_id)
        rows.append(patient_row(content))
    records = Records.from_rows(rows, COLUMNS)
    records.ids = object_array(ids)
    return records


def train_model(records: Records) -> tuple[StoredModel, TrainingReport]:
    """Estimate the Chinese model on ``records`` and take their term frequencies."""
    spec = chinese_spec()
    matcher = Matcher(spec)
    report = matcher.train(records)
    assert matcher.parameters is not None
    frequencies = {
        c.tf_column: TermFrequency.of_column(records.column(c.tf_column))
        for c in spec.comparisons
        if c.tf_column is not None
    }
    return StoredModel(spec, matcher.parameters, frequencies, len(records), None), report


def save_model(session: Session, model: StoredModel) -> datetime:
    """Replace the store's model (in the caller's transaction); returns its timestamp."""
    stamp = datetime.now(UTC).replace(tzinfo=None)
    data = model.as_json()
    row = session.get(ModelRow, model.spec.name)
    if row is None:
        row = ModelRow(name=model.spec.name)
        session.add(row)
    row.parameters = data["parameters"]
    row.term_frequencies = data["term_frequencies"]
    row.records = model.records
    row.trained_at = stamp
    session.flush()
    _cache.pop(str(session.connection().engine.url), None)  # this process sees it at once
    return stamp
