"""An audit entry as a FHIR R4 AuditEvent (http://hl7.org/fhir/R4/auditevent.html).

Mapping (docs/audit.md "As FHIR AuditEvent"):

- id ``audit-{seq}``; ``type`` = audit-event-type ``rest``; ``subtype`` = the restful-interaction
  code, plus a yilian event coding when the event is finer than the interaction (export, import);
- ``action``, ``outcome``, ``outcomeDesc``, ``recorded`` copied; ``purposeOfEvent`` = the
  v3-ActReason purpose;
- one requesting ``agent``: ``who`` is a reference when the actor is ``Type/id`` (a Practitioner,
  a Device…) and an identifier otherwise; ``role`` is the actor's role; ``network`` the address;
- ``source.observer`` is yilian itself;
- one ``entity`` per resource (``what``) and per patient not among them, one query entity for a
  search (``query`` is base64Binary, as R4 requires);
- the chain position (seq, prev_hash, hash) goes in one complex extension, because it describes
  the event record itself, not any entity it touched.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from yilian.audit.canonical import format_instant
from yilian.audit.codes import (
    EVENT_TYPE_SYSTEM,
    INTERACTION_OF_EVENT,
    PURPOSE_OF_USE_SYSTEM,
    RESTFUL_INTERACTION_SYSTEM,
    AuditEventKind,
    purposes_of_use,
)
from yilian.audit.models import AuditRecord

# yilian's own canonical URLs for what FHIR has no code or element for.
YILIAN_CANONICAL = "https://yilian.health/fhir"
CHAIN_EXTENSION_URL = f"{YILIAN_CANONICAL}/StructureDefinition/audit-chain"
EVENT_CODE_SYSTEM = f"{YILIAN_CANONICAL}/CodeSystem/audit-event"
ACTOR_ID_SYSTEM = f"{YILIAN_CANONICAL}/sid/actor"
OBSERVER_NAME = "yilian"

# http://hl7.org/fhir/R4/codesystem-audit-entity-type.html: 1 Person, 2 System Object
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
# http://hl7.org/fhir/R4/codesystem-object-role.html: 1 Patient, 4 Domain Resource, 24 Query
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
ROLE_DOMAIN_RESOURCE, ROLE_QUERY = "4", "24"
RESULT_SET_ACTIONS = ("R", "E")  # read/view, execute (a query): see indexed_part
# http://hl7.org/fhir/R4/codesystem-extra-security-role-type.html (human user) and DICOM
# CID 402 110150 "Application" for software actors (as in the spec's AuditEvent examples).
AGENT_TYPE = {
    "user": ("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "humanuser"),
    "client": ("http://dicom.nema.org/resources/ontology/DCM", "110150"),
    "system": ("http://dicom.nema.org/resources/ontology/DCM", "110150"),
}
# http://hl7.org/fhir/R4/codesystem-network-type.html: 1 machine name, 2 IP address
_IP = re.compile(r"^[0-9.]+$|^[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*$")
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def to_audit_event(record: AuditRecord) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"audit-{record.seq}",
        "extension": [_chain_extension(record)],
        "type": {"system": EVENT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"},
        "subtype": _subtypes(record.event),
        "action": record.action,
        "recorded": format_instant(record.recorded),
        "outcome": str(record.outcome),
        "purposeOfEvent": [_purpose(record.purpose)],
        "agent": [_agent(record)],
        "source": {"observer": {"display": OBSERVER_NAME}},
    }
    if record.outcome_desc:
        event["outcomeDesc"] = record.outcome_desc
    entities = _entities(record)
    if entities:
        event["entity"] = entities
    return event


def indexed_part(event: dict[str, Any]) -> dict[str, Any]:
    """What the search index holds of an AuditEvent (ADR 0011).

    A read with a Query entity (action R or E: a search, history, ``$everything``) returned a
    result set: its Domain Resource entities — every resource returned, ~580 for one
    ``$everything`` — stay in the resource and, hashed, in the chain entry, but are not indexed;
    its patients, agent and query are. Writes (C, U, D; an import too) keep every entity.
    ``AuditEvent?patient=`` thus finds every access to a patient, and ``entity=Type/id`` the
    writes of that resource and the reads of it alone.
    """
    entities = event.get("entity")
    if (
        event.get("action") not in RESULT_SET_ACTIONS
        or not isinstance(entities, list)
        # from the end: ``to_audit_event`` puts the query last, after ~580 resources
        or not any(_has_role(e, ROLE_QUERY) for e in reversed(entities))
    ):
        return event
    kept = [e for e in entities if not _has_role(e, ROLE_DOMAIN_RESOURCE)]
    return {**event, "entity": kept}


def _has_role(entity: Any, code: str) -> bool:
    role = entity.get("role") if isinstance(entity, dict) else None
    return (
        isinstance(role, dict)
        and role.get("system") == OBJECT_ROLE_SYSTEM
        and role.get("code") == code
    )


def _chain_extension(record: AuditRecord) -> dict[str, Any]:
    return {
        "url": CHAIN_EXTENSION_URL,
        "extension": [
            {"url": "seq", "valueInteger": record.seq},
            {"url": "prevHash", "valueString": record.prev_hash},
            {"url": "hash", "valueString": record.hash},
        ],
    }


def _subtypes(event: str) -> list[dict[str, str]]:
    interaction = INTERACTION_OF_EVENT[AuditEventKind(event)]
    codings = [{"system": RESTFUL_INTERACTION_SYSTEM, "code": interaction}]
    if interaction != event:
        codings.append({"system": EVENT_CODE_SYSTEM, "code": event})
    return codings


def _purpose(code: str) -> dict[str, Any]:
    coding = {"system": PURPOSE_OF_USE_SYSTEM, "code": code}
    display = purposes_of_use().get(code)
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _agent(record: AuditRecord) -> dict[str, Any]:
    system, code = AGENT_TYPE[record.actor_kind]
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": system, "code": code}]},
        "who": _actor_reference(record.actor),
        "requestor": True,
    }
    if record.actor_role:
        agent["role"] = [{"text": record.actor_role}]
    if record.request_id:
        agent["altId"] = record.request_id
    if record.source_address:
        network_type = "2" if _IP.match(record.source_address) else "1"
        agent["network"] = {"address": record.source_address, "type": network_type}
    return agent


def _actor_reference(actor: str) -> dict[str, Any]:
    if _REFERENCE.match(actor):
        return {"reference": actor}
    return {"identifier": {"system": ACTOR_ID_SYSTEM, "value": actor}, "display": actor}


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    entities = [_resource_entity(ref) for ref in record.resources]
    mentioned = {ref.split("/_history/")[0] for ref in record.resources}
    entities += [_patient_entity(p) for p in record.patients if p not in mentioned]
    if record.query:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": ROLE_QUERY, "display": "Query"},
                "query": base64.b64encode(record.query.encode("utf-8")).decode("ascii"),
                "description": record.query,
            }
        )
    return entities


def _resource_entity(ref: str) -> dict[str, Any]:
    if ref.startswith("Patient/"):
        return _patient_entity(ref)
    return {
        "what": {"reference": ref},
        "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
        "role": {
            "system": OBJECT_ROLE_SYSTEM,
            "code": ROLE_DOMAIN_RESOURCE,
            "display": "Domain Resource",
        },
    }


def _patient_entity(ref: str) -> dict[str, Any]:
    return {
        "what": {"reference": ref},
        "type": {"system": ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"},
    }
