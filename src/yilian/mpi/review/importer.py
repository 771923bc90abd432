"""Fill the review queue from the batch job's ``mpi-review.csv`` (``yilian mpi dedupe``).

The CSV names each comparison's level by its label; the weight of that level comes from the
parameters in ``mpi-report.json``, written beside it by the same run, so the steward sees the
weights the batch model used. (The exact-agreement weight of a term-frequency comparison is the
level's average weight here; the per-value adjustment is not in the CSV.) Pairs naming a Patient
that is not in the store are skipped and counted: the CSV may come from a different extract.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from yilian.fhir.store import ResourceStore
from yilian.mpi.review.queue import ComparisonEvidence, ReviewError, enqueue_candidate

FIXED_COLUMNS = ("patient_a", "patient_b", "match_probability", "match_weight")
REPORT_FILE = "mpi-report.json"


class ReviewImportError(ValueError):
    """The file breaks a rule; the message names the file, the line and the rule."""


@dataclass
class ImportResult:
    proposed: int = 0  # new or refreshed open items
    decided: int = 0  # pairs already decided by a steward (left as they are)
    missing: int = 0  # pairs naming a Patient not in the store


LevelWeights = dict[str, dict[str, tuple[int, float]]]  # comparison -> label -> (level, bits)


def level_weights(report: Path) -> LevelWeights:
    """Each comparison's levels by label, from a dedupe report's ``parameters``."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        comparisons = data["parameters"]["comparisons"]
        return {
            str(c["name"]): {
                str(level["label"]): (int(level["level"]), float(level["weight_bits"]))
                for level in c["levels"]
            }
            for c in comparisons
        }
    except FileNotFoundError:
        raise ReviewImportError(
            f"{report} not found: the review CSV needs the report of the same dedupe run "
            "(parameters) beside it, or --report [rule: review-report]"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ReviewImportError(
            f"{report} is not a dedupe report with parameters.comparisons ({exc}) "
            "[rule: review-report]"
        ) from None


def _rows(path: Path, weights: LevelWeights) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = tuple(reader.fieldnames or ())
        if header[: len(FIXED_COLUMNS)] != FIXED_COLUMNS:
            raise ReviewImportError(
                f"{path}: the header must start with {', '.join(FIXED_COLUMNS)} "
                "[rule: review-csv-header]"
            )
        unknown = [name for name in header[len(FIXED_COLUMNS) :] if name not in weights]
        if unknown:
            raise ReviewImportError(
                f"{path}: comparison column(s) {', '.join(unknown)} are not in the report's "
                "parameters [rule: review-csv-comparisons]"
            )
        yield from enumerate(reader, start=2)


def _evidence(
    path: Path, line: int, row: dict[str, str], weights: LevelWeights
) -> list[ComparisonEvidence]:
    evidence = []
    for name, levels in weights.items():
        if name not in row:
            continue
        label = row[name]
        if label not in levels:
            raise ReviewImportError(
                f"{path} line {line}: {name} level {label!r} is not one of "
                f"{', '.join(levels)} [rule: review-csv-level]"
            )
        level, bits = levels[label]
        evidence.append(ComparisonEvidence(name, level, label, bits))
    return evidence


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    try:
        return float(row[column])
    except (TypeError, ValueError):
        raise ReviewImportError(
            f"{path} line {line}: {column} {row.get(column)!r} is not a number "
            "[rule: review-csv-number]"
        ) from None


def import_review_csv(store: ResourceStore, path: Path, report: Path | None = None) -> ImportResult:
    """Propose every pair of the CSV (source ``batch``) in the store's transaction."""
    weights = level_weights(report or path.with_name(REPORT_FILE))
    result = ImportResult()
    known: dict[str, bool] = {}

    def exists(pid: str) -> bool:
        if pid not in known:
            row = store.current_row("Patient", pid)
            known[pid] = row is not None and not row.deleted
        return known[pid]

    for line, row in _rows(path, weights):
        a, b = row["patient_a"], row["patient_b"]
        evidence = _evidence(path, line, row, weights)
        probability = _number(path, line, row, "match_probability")
        weight = _number(path, line, row, "match_weight")
        if not (exists(a) and exists(b)):
            result.missing += 1
            continue
        try:
            item = enqueue_candidate(
                store.session, a, b, probability=probability, match_weight=weight,
                comparisons=evidence, source="batch",
            )  # fmt: skip
        except ReviewError as exc:
            raise ReviewImportError(f"{path} line {line}: {exc} [rule: {exc.rule}]") from None
        if item.status == "open":
            result.proposed += 1
        else:
            result.decided += 1
    return result
