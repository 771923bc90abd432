"""The Patient compartment (R4 CompartmentDefinition/patient): which resources are a patient's.

``patient_compartment.json`` is derived from CompartmentDefinition-patient.json of the official
R4 examples package by ``scripts/gen_search_parameters.py``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def patient_compartment() -> dict[str, list[str]]:
    """Resource type → the search parameters that put it in a Patient's compartment."""
    text = resources.files("yilian.fhir").joinpath("patient_compartment.json").read_text("utf-8")
    data: dict[str, list[str]] = json.loads(text)
    return data


@cache
def _patient_keys(res_type: str) -> tuple[str, ...]:
    """Top-level elements through which a resource of this type may point at its patient.

    Compartment parameters are named like their elements in almost every case (subject, patient,
    performer, …); ``participant``/``actor``-style nesting is followed by ``_collect``. The one
    parameter named unlike its element is ``actor`` (Appointment, AppointmentResponse:
    ``participant.actor``), hence ``participant``.
    """
    keys = {p.split(".", 1)[0] for p in patient_compartment().get(res_type, [])}
    if "actor" in keys:
        keys.add("participant")
    return tuple(sorted(keys | {"subject", "patient", "for", "beneficiary"}))


def patients_of(resource: dict[str, Any]) -> list[str]:
    """The ``Patient/id`` references whose data this resource is (for audit and consent)."""
    if resource.get("resourceType") == "Patient" and resource.get("id"):
        return [f"Patient/{resource['id']}"]
    found: set[str] = set()
    for key in _patient_keys(str(resource.get("resourceType", ""))):
        _collect(resource.get(key), found)
    return sorted(found)


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/") and ref.count("/") == 1:
            found.add(ref)
        for key in ("actor", "who", "individual"):
            if key in value:
                _collect(value[key], found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)
