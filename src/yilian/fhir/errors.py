"""Status-coded errors of the FHIR layer, each rendered once as an OperationOutcome.

Raise these anywhere below the REST router; the single handler in ``yilian.fhir.api`` turns them
into the HTTP status and OperationOutcome body. ``expression`` names the element path (FHIRPath
style, e.g. ``Patient.identifier[0].value``) and ``rule`` names the rule that failed, so a client
developer can act without reading our code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue. ``code`` is from http://hl7.org/fhir/issue-type."""

    message: str
    code: str = "invalid"
    severity: str = "error"
    expression: str | None = None
    rule: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        text = f"{self.message} [rule: {self.rule}]" if self.rule else self.message
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": text,
            "details": {"text": text},
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass
class FhirError(Exception):
    """An error with an HTTP status and one or more issues."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(i.message for i in self.issues) or f"HTTP {self.status}"

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def invalid(
    message: str,
    *,
    expression: str | None = None,
    rule: str | None = None,
    status: int = 400,
    code: str = "invalid",
) -> FhirError:
    return FhirError(status, [Issue(message, code=code, expression=expression, rule=rule)])


class ValidationFailed(FhirError):
    """The resource is not valid FHIR R4 or breaks a yilian rule (HTTP 422 by default)."""

    def __init__(self, issues: list[Issue], status: int = 422) -> None:
        super().__init__(status, issues)


def not_found(message: str) -> FhirError:
    return FhirError(404, [Issue(message, code="not-found")])


def gone(message: str) -> FhirError:
    return FhirError(410, [Issue(message, code="deleted")])


def conflict(message: str, *, rule: str | None = None) -> FhirError:
    return FhirError(409, [Issue(message, code="conflict", rule=rule)])


def precondition_failed(message: str, *, rule: str | None = None) -> FhirError:
    return FhirError(412, [Issue(message, code="conflict", rule=rule)])


def not_supported(message: str, *, status: int = 400) -> FhirError:
    return FhirError(status, [Issue(message, code="not-supported")])
