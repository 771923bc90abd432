"""Tamper-evident audit log (全程可追溯): a hash chain of every access to patient data.

See docs/audit.md for the design; the public surface is re-exported here.
"""

from yilian.audit.chain import AuditInputError, append, append_batch, chain_head
from yilian.audit.codes import AuditEventKind, AuditOutcome
from yilian.audit.fhir import to_audit_event
from yilian.audit.models import AuditInput, AuditRecord
from yilian.audit.queries import accesses_to_patient, latest
from yilian.audit.verify import Anchor, Problem, VerifyReport, verify

__all__ = [
    "Anchor",
    "AuditEventKind",
    "AuditInput",
    "AuditInputError",
    "AuditOutcome",
    "AuditRecord",
    "Problem",
    "VerifyReport",
    "accesses_to_patient",
    "append",
    "append_batch",
    "chain_head",
    "latest",
    "to_audit_event",
    "verify",
]
