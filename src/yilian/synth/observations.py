"""Observations and DiagnosticReports: vital signs, laboratory results and imaging.

LOINC codes (http://loinc.org): BP panel 85354-9 with 8480-6/8462-4, fasting glucose 14771-0
(mmol/L, as Chinese laboratories report), HbA1c 4548-4, total cholesterol 14647-2, HDL-C 14646-4
(mmol/L), BMI 39156-5, waist 8280-0, tobacco smoking status 72166-2 with LOINC answers; lipid
panel 24331-1; imaging: XR chest 24648-8, CT chest 24627-2, CT head 24725-4.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from yilian.fhir import systems
from yilian.synth.fhir import Json, coding, concept, quantity, ref

VITAL = concept(systems.HL7_OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")
LAB = concept(systems.HL7_OBSERVATION_CATEGORY, "laboratory", "Laboratory")
SOCIAL = concept(systems.HL7_OBSERVATION_CATEGORY, "social-history", "Social History")
IMAGING = concept(systems.HL7_OBSERVATION_CATEGORY, "imaging", "Imaging")

# name -> (LOINC, display, category, unit, UCUM, decimals)
MEASURES: dict[str, tuple[str, str, Json, str, str, int]] = {
    "glucose": ("14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma", LAB, "mmol/L",
                "mmol/L", 1),
    "hba1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", LAB, "%", "%", 1),
    "tc": ("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", LAB, "mmol/L", "mmol/L", 2),
    "hdl": ("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", LAB, "mmol/L",
            "mmol/L", 2),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]", VITAL, "kg/m2", "kg/m2", 1),
    "waist": ("8280-0", "Waist Circumference at umbilicus by Tape measure", VITAL, "cm", "cm", 1),
}  # fmt: skip
SMOKING_ANSWERS = {
    "current": ("LA18976-3", "Current every day smoker"),
    "former": ("LA15920-4", "Former smoker"),
    "never": ("LA18978-9", "Never smoker"),
}
IMAGING_STUDIES = {
    "xr-chest": ("24648-8", "XR Chest PA upright"),
    "ct-chest": ("24627-2", "CT Chest"),
    "ct-head": ("24725-4", "CT Head"),
}


def instant(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def _base(oid: str, patient: str, encounter: str, when: dt.datetime, category: Json) -> Json:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [category],
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter),
        "effectiveDateTime": instant(when),
    }


def blood_pressure(
    oid: str, patient: str, encounter: str, when: dt.datetime, sbp: int, dbp: int
) -> Json:
    def component(code: str, display: str, value: int) -> Json:
        return {
            "code": concept(systems.LOINC, code, display),
            "valueQuantity": quantity(value, "mmHg", "mm[Hg]"),
        }

    obs = _base(oid, patient, encounter, when, VITAL)
    obs["code"] = concept(
        systems.LOINC, "85354-9", "Blood pressure panel with all children optional"
    )
    obs["component"] = [
        component("8480-6", "Systolic blood pressure", sbp),
        component("8462-4", "Diastolic blood pressure", dbp),
    ]
    return obs


def measurement(
    oid: str, patient: str, encounter: str, when: dt.datetime, name: str, value: float
) -> Json:
    code, display, category, unit, ucum, decimals = MEASURES[name]
    obs = _base(oid, patient, encounter, when, category)
    obs["code"] = concept(systems.LOINC, code, display)
    obs["valueQuantity"] = quantity(round(value, decimals), unit, ucum)
    return obs


def smoking_status(oid: str, patient: str, encounter: str, when: dt.datetime, status: str) -> Json:
    answer, display = SMOKING_ANSWERS[status]
    obs = _base(oid, patient, encounter, when, SOCIAL)
    obs["code"] = concept(systems.LOINC, "72166-2", "Tobacco smoking status")
    obs["valueCodeableConcept"] = concept(systems.LOINC, answer, display)
    return obs


def report(
    rid: str,
    patient: str,
    encounter: str,
    when: dt.datetime,
    *,
    code: tuple[str, str],
    section: str,
    performer: tuple[str, str],
    results: list[str] | None = None,
    conclusion: str | None = None,
) -> Json:
    """A DiagnosticReport (v2-0074 section LAB or RAD) issued two hours after the sample."""
    body: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "category": [{"coding": [coding(systems.HL7_DIAGNOSTIC_SERVICE, section)]}],
        "code": concept(systems.LOINC, code[0], code[1]),
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter),
        "effectiveDateTime": instant(when),
        "issued": instant(when + dt.timedelta(hours=2)),
        "performer": [ref("Organization", performer[0], performer[1])],
    }
    if results:
        body["result"] = [ref("Observation", r) for r in results]
    if conclusion:
        body["conclusion"] = conclusion
    return body
