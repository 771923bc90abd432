"""What the steward's comparison page shows: the two registrations side by side, each compared
field with its level and match weight as stored with the review item.

A positive weight is evidence for the same person, a negative one against, zero (a missing
value) neither way: the page colours rows by that sign, so the weights and the colours cannot
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yilian.mpi.district import patient_row


@dataclass(frozen=True)
class FieldRow:
    name: str  # comparison name (surname, given, sex, ...) or a plain field (links, active)
    left: str
    right: str
    level: str | None  # the level's label, None for a field the model does not compare
    weight: float | None

    @property
    def verdict(self) -> str:
        """agree | disagree | missing | info (the row's colour)."""
        if self.weight is None:
            return "info"
        if self.weight > 0:
            return "agree"
        return "disagree" if self.weight < 0 else "missing"


def _name_part(patient: dict[str, Any], part: str) -> str:
    name = (patient.get("name") or [{}])[0]
    if part == "surname":
        return str(name.get("family") or "")
    return "".join(name.get("given") or [])


def field_value(patient: dict[str, Any], comparison: str) -> str:
    """The value a comparison looked at, as a person reads it."""
    if comparison in ("surname", "given"):
        return _name_part(patient, comparison)
    value = patient_row(patient).get(comparison)
    if comparison == "mrn" and value:
        value = value.rsplit("/", 1)[-1].replace("|", " · ")
    return value or ""


def _links(patient: dict[str, Any]) -> str:
    return ", ".join(
        f"{link.get('type')} → {(link.get('other') or {}).get('reference', '')}"
        for link in patient.get("link", [])
    )


def comparison_rows(
    comparisons: list[dict[str, Any]], left: dict[str, Any], right: dict[str, Any]
) -> list[FieldRow]:
    rows = [
        FieldRow(
            str(c["name"]),
            field_value(left, str(c["name"])),
            field_value(right, str(c["name"])),
            str(c["label"]),
            float(c["weight"]),
        )
        for c in comparisons
    ]
    active = {True: "✓", False: "✗"}
    rows.append(
        FieldRow(
            "active",
            active.get(left.get("active", True), "?"),
            active.get(right.get("active", True), "?"),
            None,
            None,
        )
    )
    rows.append(FieldRow("links", _links(left), _links(right), None, None))
    return rows


def display_name(patient: dict[str, Any]) -> str:
    return _name_part(patient, "surname") + _name_part(patient, "given") or str(patient.get("id"))
