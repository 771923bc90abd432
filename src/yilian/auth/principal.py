"""Roles and the authenticated principal every request carries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Role(StrEnum):
    """The users of yilian (shared/MISSION.md "Who uses it"), one role each."""

    ADMIN = "admin"  # system administrator
    FAMILY_DOCTOR = "family_doctor"  # 家庭医生, a Practitioner at a CHC
    SPECIALIST = "specialist"  # hospital clinician or referral desk
    CDC = "cdc"  # 疾控 epidemiologist
    MANAGER = "manager"  # 卫健委 health-commission manager
    FACILITY_ADMIN = "facility_admin"  # hospital / CHC administrator
    RESIDENT = "resident"  # 居民
    STEWARD = "steward"  # 主索引数据管理员: works the patient-matching review queue (issue #6)


CLINICIANS = frozenset({Role.FAMILY_DOCTOR, Role.SPECIALIST})


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user with a role, the token's scopes and the records the user stands for.

    ``practitioner_id``/``patient_id``/``organization_id`` are plain FHIR ids (``Practitioner/x``
    without the type). ``break_glass`` is the emergency-access reason of this request, if any.
    """

    user_id: int
    username: str
    display_name: str
    role: Role
    scopes: frozenset[str]
    practitioner_id: str | None = None
    patient_id: str | None = None
    organization_id: str | None = None
    break_glass: str | None = None

    @property
    def actor(self) -> str:
        """The actor written to the audit chain: ``user/<username>``."""
        return f"user/{self.username}"

    @property
    def is_clinician(self) -> bool:
        return self.role in CLINICIANS

    def with_break_glass(self, reason: str) -> Principal:
        return replace(self, break_glass=reason)
