"""The CapabilityStatement at ``/fhir/metadata``: what this server really supports, nothing more.

Built from the same registry the index uses, so every search parameter listed is one the store
extracts and the search engine answers; composite and special parameters are left out because
they are not implemented.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from yilian import __version__
from yilian.fhir.searchparams.registry import params_for, resource_types

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
SUPPORTED_KINDS = frozenset({"number", "date", "string", "token", "reference", "quantity", "uri"})
COMMON = ("_id", "_lastUpdated")
RESULT_PARAMETERS = (
    "_count, _sort (multi-key, '-' for descending), _summary (true, text, data, count), "
    "_elements, _total, _include and _revinclude (with :iterate one level), chained parameters "
    "(one level), _has (reverse chain), paging via _getpages"
)


def _resource_entry(res_type: str) -> dict[str, Any]:
    params = [
        {
            "name": code,
            "type": d.type,
            "definition": f"http://hl7.org/fhir/SearchParameter/{res_type}-{code}",
        }
        for code, d in sorted(params_for(res_type).items())
        if d.type in SUPPORTED_KINDS and (d.expression or code in COMMON)
    ]
    entry: dict[str, Any] = {
        "type": res_type,
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "referencePolicy": ["literal", "logical"],
        "searchInclude": ["*"],
        "searchRevInclude": ["*"],
        "searchParam": params,
    }
    if res_type == "Patient":
        entry["operation"] = [
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            },
        ]
    return entry


@cache
def _statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "yilian",
        "kind": "instance",
        "software": {"name": "yilian", "version": __version__},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "FHIR R4 store of yilian. Every resource is validated against R4 4.0.1 and "
                    "yilian's rules; every read and write is recorded in a hash-chained audit "
                    "log. Supported search result parameters: " + RESULT_PARAMETERS + ". "
                    "Composite search parameters and _text/_content are not supported."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Every interaction except GET /metadata needs 'Authorization: Bearer "
                        "<token>' (an opaque token from `yilian users token NAME`, with "
                        "SMART-v1-style scopes such as user/*.read or patient/*.read) or the "
                        "web session cookie. Role rules (docs/authorization.md) restrict each "
                        "search inside the database; refusals are 403 OperationOutcomes naming "
                        "the rule and are audited. X-Break-Glass: <reason> lets a clinician "
                        "read one patient's record for one request (purpose of use BTG)."
                    ),
                },
                "resource": [_resource_entry(t) for t in sorted(resource_types())],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    },
                    {
                        "name": "import",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import",
                    },
                ],
            }
        ],
    }


def capability_statement(base_url: str) -> dict[str, Any]:
    statement = dict(_statement())
    statement["implementation"] = {"description": "yilian FHIR R4 endpoint", "url": base_url}
    return statement
