"""Informational notes a write hook attaches to the response of the write it ran in.

A hook cannot change what the store returns, yet a client should learn what a rule did with its
write (the patient index linked the new Patient to a person, or queued it for review). Notes live
on the request's session (``Session.info``), keyed by ``Type/id``: the REST routes send them as a
response header, Bundle entries as ``response.outcome`` (an OperationOutcome of severity
information). docs/api.md "Write notes".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

_KEY = "yilian.write_notes"


def add_note(session: Session, reference: str, header: str, text: str) -> None:
    """Attach ``header: text`` to the response of the write of ``reference``."""
    notes: dict[str, dict[str, str]] = session.info.setdefault(_KEY, {})
    notes.setdefault(reference, {})[header] = text


def headers_for(session: Session, reference: str) -> dict[str, str]:
    """The notes of one written resource, as response headers."""
    return dict(session.info.get(_KEY, {}).get(reference, {}))


def outcome_for(session: Session, reference: str) -> dict[str, Any] | None:
    """The notes of one written resource as an OperationOutcome (Bundle ``response.outcome``)."""
    notes = headers_for(session, reference)
    if not notes:
        return None
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "information", "code": "informational", "diagnostics": f"{k}: {v}"}
            for k, v in notes.items()
        ],
    }
