"""Status-coded errors of tiered care, rendered as OperationOutcome by the FHIR error handler.

Each names its rule (docs/referral.md lists them) so a client can act without reading our code.
"""

from __future__ import annotations

from yilian.fhir.errors import FhirError, Issue


def forbidden(rule: str, message: str, *, expression: str | None = None) -> FhirError:
    return FhirError(403, [Issue(message, code="forbidden", rule=rule, expression=expression)])


def conflict(rule: str, message: str, *, notes: list[str] | None = None) -> FhirError:
    issues = [Issue(message, code="conflict", rule=rule)]
    issues += [Issue(note, code="informational", severity="information") for note in notes or []]
    return FhirError(409, issues)


def unprocessable(rule: str, message: str, *, expression: str | None = None) -> FhirError:
    return FhirError(422, [Issue(message, code="business-rule", rule=rule, expression=expression)])
