"""Patients of the synthetic district (``yilian synth --duplicates``) as matcher records, and the
quality figures issue #6 asks for: F1, false links among twins/family members, review share.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from yilian.fhir import systems
from yilian.mpi.chinese import COLUMNS
from yilian.mpi.evaluate import Quality, pair_quality
from yilian.mpi.febrl import DataError
from yilian.mpi.model import LOWER_THRESHOLD, UPPER_THRESHOLD, Scored
from yilian.mpi.records import IntArray, ObjArray, Records, factorize, object_array

TRUTH_FILE = "mpi-truth.csv"  # written by yilian.synth.duplicates


@dataclass
class District:
    records: Records
    entity: ObjArray
    household: ObjArray


def patient_row(resource: dict[str, Any]) -> dict[str, str | None]:
    """The matcher's columns from a FHIR Patient (first name, phone, address; ID and MRN)."""
    name = (resource.get("name") or [{}])[0]
    full = name.get("text") or (name.get("family", "") + "".join(name.get("given", [])))
    phone = next(
        (t.get("value") for t in resource.get("telecom", []) if t.get("system") == "phone"), None
    )
    address = (resource.get("address") or [{}])[0].get("text")
    row: dict[str, str | None] = {
        "name": full or None,
        "sex": resource.get("gender"),
        "birth_date": resource.get("birthDate"),
        "phone": phone,
        "address": address,
        "resident_id": None,
        "insurance_card": None,
        "mrn": None,
    }
    for ident in resource.get("identifier", []):
        system = str(ident.get("system", ""))
        if system == systems.RESIDENT_ID:
            row["resident_id"] = ident.get("value")
        elif system.startswith(systems.MRN_PREFIX) and row["mrn"] is None:
            row["mrn"] = f"{system}|{ident.get('value')}"
    return row


def load_district(directory: Path) -> District:
    """Read Patient.ndjson[.gz] and mpi-truth.csv from a ``yilian synth --duplicates`` run."""
    plain, packed = directory / "Patient.ndjson", directory / "Patient.ndjson.gz"
    path = plain if plain.is_file() else packed
    truth_path = directory / TRUTH_FILE
    if not path.is_file() or not truth_path.is_file():
        raise DataError(
            f"{directory}: needs Patient.ndjson and {TRUTH_FILE} (run yilian synth --duplicates)"
        )
    ids, rows = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise DataError(f"{path}:{line_number}: not a JSON line") from None
            ids.append(resource.get("id"))
            rows.append(patient_row(resource))
    truth: dict[str, tuple[str, str]] = {}
    with truth_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            truth[row["patient_id"]] = (row["entity_id"], row["household"])
    missing = [i for i in ids if i not in truth]
    if missing:
        raise DataError(f"{truth_path}: no true entity for Patient/{missing[0]}")
    records = Records.from_rows(rows, COLUMNS)
    records.ids = object_array(ids)
    entity = object_array(truth[i][0] for i in ids)
    household = object_array(truth[i][1] for i in ids)
    return District(records, entity, household)


@dataclass(frozen=True)
class DistrictQuality:
    quality: Quality
    family_pairs: int  # pairs of records of different people in one household (incl. twins)
    family_false_links: int
    review_pairs: int
    review_records: int

    @property
    def family_false_link_rate(self) -> float:
        return self.family_false_links / self.family_pairs if self.family_pairs else 0.0


def _family_pair_count(entity: ObjArray, household: ObjArray) -> int:
    """Pairs in one household whose records belong to different people."""
    hh, ent = factorize(household), factorize(entity)
    total = 0
    _, hh_counts = np.unique(hh, return_counts=True)
    total = int((hh_counts * (hh_counts - 1) // 2).sum())
    pairs = hh * (int(ent.max(initial=0)) + 1) + ent
    _, same_counts = np.unique(pairs, return_counts=True)
    return total - int((same_counts * (same_counts - 1) // 2).sum())


def district_quality(district: District, scored: Scored, threshold: float) -> DistrictQuality:
    links = scored.probability >= threshold
    i, j = scored.i[links], scored.j[links]
    quality = pair_quality(district.records, district.entity, i, j)
    ent, hh = factorize(district.entity), factorize(district.household)
    family = (hh[i] == hh[j]) & (ent[i] != ent[j])
    band = (scored.probability >= LOWER_THRESHOLD) & (scored.probability < UPPER_THRESHOLD)
    in_review: IntArray = np.unique(np.concatenate([scored.i[band], scored.j[band]]))
    return DistrictQuality(
        quality,
        _family_pair_count(district.entity, district.household),
        int(family.sum()),
        int(band.sum()),
        len(in_review),
    )
