"""``yilian mpi dedupe``: the batch job over a whole population's Patients.

Reads ``Patient.ndjson[.gz]`` (a ``yilian export`` or ``yilian synth`` directory) with DuckDB,
estimates the model on the data, scores every candidate pair, links clusters of automatic matches
to a golden record, and writes:

- ``Patient.ndjson``: every Patient of a cluster, with ``Patient.link`` (type ``seealso``) from
  each member to the golden record and from the golden record to each member; ``yilian load``
  applies them. Members stay active: merging (``replaced-by``) is the steward's decision.
- ``mpi-review.csv``: the pairs in the review band, with the level of each comparison.
- ``mpi-report.json`` (and the printed summary): counts, thresholds, timings, the parameters.

The golden record of a cluster is the member with a valid resident ID and the most filled
fields, ties to the smallest id (the first registration in a synth directory).
"""

from __future__ import annotations

import csv
import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson

from yilian.fhir import systems
from yilian.mpi.chinese import COLUMNS, chinese_spec
from yilian.mpi.febrl import DataError
from yilian.mpi.model import LOWER_THRESHOLD, UPPER_THRESHOLD, Matcher, Scored
from yilian.mpi.parameters import parameters_dict
from yilian.mpi.records import IntArray, Records, object_array

Step = Callable[[str], None]


def patient_file(directory: Path) -> Path:
    for name in ("Patient.ndjson", "Patient.ndjson.gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: no Patient.ndjson or Patient.ndjson.gz to deduplicate")


# One row per Patient with the matcher's columns, extracted by DuckDB from the FHIR JSON. The
# columns are typed explicitly so that inference never depends on which keys a sample holds.
_EXTRACT = """
SELECT id,
  coalesce(name[1].text, name[1].family || coalesce(array_to_string(name[1].given, ''), '')),
  gender,
  birthDate,
  list_filter(telecom, lambda t: t.system = 'phone')[1].value,
  address[1].text,
  list_filter(identifier, lambda i: i.system = $rid)[1].value,
  NULL,
  list_transform(
    list_filter(identifier, lambda i: starts_with(i.system, $mrn)),
    lambda i: i.system || '|' || i.value
  )[1]
FROM read_json($path, format = 'newline_delimited', columns = {
  id: 'VARCHAR',
  name: 'STRUCT(text VARCHAR, family VARCHAR, given VARCHAR[])[]',
  gender: 'VARCHAR',
  birthDate: 'VARCHAR',
  telecom: 'STRUCT(system VARCHAR, value VARCHAR)[]',
  address: 'STRUCT(text VARCHAR)[]',
  identifier: 'STRUCT(system VARCHAR, value VARCHAR)[]'
})
"""


def read_patients(path: Path) -> Records:
    """The matcher's columns for every Patient in the file, read by DuckDB."""
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        try:
            rows = con.execute(
                _EXTRACT, {"path": str(path), "rid": systems.RESIDENT_ID, "mrn": systems.MRN_PREFIX}
            ).fetchall()
        except duckdb.Error as exc:
            raise DataError(f"{path}: not FHIR NDJSON ({exc})") from None
    if any(row[0] is None for row in rows):
        raise DataError(f"{path}: a Patient has no id")
    records = Records.from_rows([dict(zip(COLUMNS, row[1:], strict=True)) for row in rows], COLUMNS)
    records.ids = object_array(str(row[0]) for row in rows)
    return records


def clusters(n: int, i: IntArray, j: IntArray) -> IntArray:
    """Connected components of the link graph: each record's cluster label (smallest member)."""
    label = np.arange(n)
    while True:
        low = np.minimum(label[i], label[j])
        new = label.copy()
        np.minimum.at(new, i, low)
        np.minimum.at(new, j, low)
        new = new[new]  # pointer jumping: follow labels to their own label
        if (new == label).all():
            return label
        label = new


@dataclass
class DedupeReport:
    records: int
    candidate_pairs: int
    auto_links: int
    review_pairs: int
    clusters: int
    records_in_clusters: int
    seconds: dict[str, float]
    parameters: dict[str, object]

    def as_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, indent=2) + "\n"


def _completeness(records: Records) -> IntArray:
    filled = np.zeros(len(records), dtype=np.int64)
    for column in COLUMNS:
        filled += records.codes(column) >= 0
    valid = records.codes("resident_id:valid") >= 0
    return filled + 100 * valid


def golden_records(records: Records, label: IntArray) -> dict[int, int]:
    """Cluster label -> row of its golden record (valid ID, most fields, smallest id)."""
    score = _completeness(records)
    order = sorted(range(len(records)), key=lambda r: (label[r], -score[r], records.ids[r]))
    golden: dict[int, int] = {}
    for row in order:
        golden.setdefault(int(label[row]), row)
    return golden


def run_dedupe(source: Path, out: Path, step: Step = lambda name: None) -> DedupeReport:
    """The whole job; ``step(name)`` is called as each stage starts (for the progress bar)."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

    path = patient_file(source)
    step("read Patients (DuckDB)")
    records = read_patients(path)
    lap("read")
    step("estimate parameters (EM)")
    matcher = Matcher(chinese_spec())
    report = matcher.train(records)
    lap("train")
    step("block and score")
    scored = matcher.predict(records)
    lap("score")
    step("cluster and write")
    linked = scored.probability >= UPPER_THRESHOLD
    label = clusters(len(records), scored.i[linked], scored.j[linked])
    sizes = np.bincount(label, minlength=len(records))
    in_cluster = sizes[label] > 1
    golden = golden_records(records, np.where(in_cluster, label, -1 - np.arange(len(records))))
    out.mkdir(parents=True, exist_ok=True)
    _write_links(path, out / "Patient.ndjson", records, label, in_cluster, golden)
    _write_review(out / "mpi-review.csv", records, scored, matcher)
    lap("write")
    assert matcher.parameters is not None
    result = DedupeReport(
        len(records),
        report.candidate_pairs,
        int(linked.sum()),
        int(((scored.probability >= LOWER_THRESHOLD) & ~linked).sum()),
        int((sizes > 1).sum()),
        int(in_cluster.sum()),
        seconds,
        parameters_dict(matcher.spec, matcher.parameters),
    )
    (out / "mpi-report.json").write_text(result.as_json(), encoding="utf-8")
    return result


def _write_links(
    path: Path,
    target: Path,
    records: Records,
    label: IntArray,
    in_cluster: np.ndarray[Any, np.dtype[np.bool_]],
    golden: dict[int, int],
) -> None:
    """Rewrite the clustered Patients with Patient.link to/from their golden record."""
    row_of = {str(pid): k for k, pid in enumerate(records.ids.tolist())}
    members: dict[int, list[str]] = {}
    for member in np.flatnonzero(in_cluster).tolist():
        members.setdefault(int(label[member]), []).append(str(records.ids[member]))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as source, target.open("wb") as sink:
        for line in source:
            resource = orjson.loads(line)
            found = row_of.get(str(resource.get("id")))
            if found is None or not in_cluster[found]:
                continue
            row = found
            key = int(label[row])
            gold = str(records.ids[golden[key]])
            others = [m for m in members[key] if m != gold] if row == golden[key] else [gold]
            links = [
                link
                for link in resource.get("link", [])
                if link.get("other", {}).get("reference") not in {f"Patient/{o}" for o in others}
            ]
            links += [{"other": {"reference": f"Patient/{o}"}, "type": "seealso"} for o in others]
            resource["link"] = links
            sink.write(orjson.dumps(resource) + b"\n")


def _write_review(path: Path, records: Records, scored: Scored, matcher: Matcher) -> None:
    band = np.flatnonzero(
        (scored.probability >= LOWER_THRESHOLD) & (scored.probability < UPPER_THRESHOLD)
    )
    names = [c.name for c in matcher.spec.comparisons]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_a", "patient_b", "match_probability", "match_weight", *names])
        for k in band[np.argsort(-scored.probability[band])]:
            writer.writerow(
                [
                    records.ids[scored.i[k]],
                    records.ids[scored.j[k]],
                    f"{scored.probability[k]:.4f}",
                    f"{scored.weight[k]:.2f}",
                    *[
                        matcher.spec.comparisons[c].labels[g - 1] if g else "missing"
                        for c, g in enumerate(scored.gamma[k].tolist())
                    ],
                ]
            )
