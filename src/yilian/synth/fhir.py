"""Small builders for the FHIR R4 JSON the generator writes (plain dicts, ready for orjson)."""

from __future__ import annotations

from typing import Any

from yilian.fhir import systems

Json = dict[str, Any]


def ref(resource_type: str, resource_id: str, display: str | None = None) -> Json:
    """A literal ``Type/id`` reference: files load in any order (docs/bulk.md keeps ids)."""
    reference: Json = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        reference["display"] = display
    return reference


def coding(system: str, code: str, display: str | None = None) -> Json:
    result: Json = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> Json:
    result: Json = {"coding": [coding(system, code, display)]}
    if text:
        result["text"] = text
    return result


def identifier(system: str, value: str, type_code: str) -> Json:
    """An identifier with its HL7 v2-0203 type, as docs/identifiers.md asks."""
    return {
        "type": concept(systems.HL7_IDENTIFIER_TYPE, type_code),
        "system": system,
        "value": value,
    }


def quantity(value: float, unit: str, ucum: str) -> Json:
    return {"value": value, "unit": unit, "system": systems.UCUM, "code": ucum}


def geolocation(latitude: float, longitude: float) -> Json:
    """The HL7 core geolocation extension (http://hl7.org/fhir/extension-geolocation.html)."""
    return {
        "url": systems.EXT_GEOLOCATION,
        "extension": [
            {"url": "latitude", "valueDecimal": latitude},
            {"url": "longitude", "valueDecimal": longitude},
        ],
    }


def subdistrict_extension(code: str, name: str) -> Json:
    return {"url": systems.EXT_SUBDISTRICT, "valueCoding": coding(systems.TOWNSHIP, code, name)}
