"""Code tables of the audit log: events, their FHIR action codes, outcomes and purposes of use.

Every code an audit entry may carry is defined here, once, with its source, so that appending,
verifying and the FHIR AuditEvent translator agree on them.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from importlib import resources

# http://hl7.org/fhir/R4/codesystem-audit-event-type.html
EVENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
# http://hl7.org/fhir/R4/codesystem-restful-interaction.html
RESTFUL_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
# http://terminology.hl7.org/CodeSystem/v3-ActReason (PurposeOfUse branch)
PURPOSE_OF_USE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


class AuditEventKind(StrEnum):
    """The finer-grained event an entry records (stored in ``audit_entry.event``)."""

    CREATE = "create"
    READ = "read"
    VREAD = "vread"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    HISTORY = "history"
    SEARCH = "search"
    TRANSACTION = "transaction"
    BATCH = "batch"
    OPERATION = "operation"
    EXPORT = "export"
    IMPORT = "import"


# FHIR R4 AuditEvent.action (http://hl7.org/fhir/R4/valueset-audit-event-action.html):
# C create, R "read/view/print", U update, D delete, E "execute ... such as ... perform a
# query/search operation" — so search is E (as in the spec's AuditEvent-example-search), and
# whole-system functions (transaction, batch, operations, bulk export) are E too. An import
# creates resources, so it is C.
ACTION_OF_EVENT: dict[AuditEventKind, str] = {
    AuditEventKind.CREATE: "C",
    AuditEventKind.READ: "R",
    AuditEventKind.VREAD: "R",
    AuditEventKind.HISTORY: "R",
    AuditEventKind.UPDATE: "U",
    AuditEventKind.PATCH: "U",
    AuditEventKind.DELETE: "D",
    AuditEventKind.SEARCH: "E",
    AuditEventKind.TRANSACTION: "E",
    AuditEventKind.BATCH: "E",
    AuditEventKind.OPERATION: "E",
    AuditEventKind.EXPORT: "E",
    AuditEventKind.IMPORT: "C",
}

# The restful-interaction code (AuditEvent.subtype) of each event. Export and import are FHIR
# operations ($export, $import), so their interaction is "operation"; the finer event is kept
# as a second subtype coding (see yilian.audit.fhir).
INTERACTION_OF_EVENT: dict[AuditEventKind, str] = {
    kind: ("operation" if kind in (AuditEventKind.EXPORT, AuditEventKind.IMPORT) else kind.value)
    for kind in AuditEventKind
}


class AuditOutcome:
    """FHIR R4 AuditEvent.outcome codes (http://hl7.org/fhir/R4/valueset-audit-event-outcome.html)."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12
    ALL = frozenset({0, 4, 8, 12})


ACTOR_KINDS = frozenset({"user", "client", "system"})


@cache
def purposes_of_use() -> dict[str, str]:
    """code → display of every PurposeOfUse concept in v3-ActReason (2018-08-12).

    Shipped as data (purpose_of_use.json, extracted from the official HL7 R4 package) rather
    than typed out, so it can be compared with its source in the tests.
    """
    text = (resources.files("yilian.audit") / "purpose_of_use.json").read_text("utf-8")
    codes: dict[str, str] = json.loads(text)["codes"]
    return codes
