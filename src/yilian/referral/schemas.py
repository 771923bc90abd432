"""Request bodies of the referral API (validated by pydantic: a bad field → 400 naming it)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FhirId = Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotPlanBody(Body):
    organization: str = FhirId
    department: str = Field(pattern=r"^[a-z0-9\-]{1,40}$")
    location: str = FhirId
    first: dt.date
    last: dt.date
    clinic_level: Literal["expert", "general"] = "general"
    practitioner: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    minutes: int = Field(default=15, ge=5, le=240)


class ReferralBody(Body):
    patient: str = FhirId
    target: str = FhirId
    reason: str = Field(min_length=1, max_length=2000)
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    reason_code: str | None = Field(default=None, pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
    supporting: list[str] = Field(default_factory=list, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class ReferAndBookBody(ReferralBody):
    slot: str = FhirId


class ActionBody(Body):
    reason: str | None = Field(default=None, max_length=1000)
    slot: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-.]{1,64}$")


class MessageBody(Body):
    text: str = Field(min_length=1, max_length=2000)


class DischargeBody(Body):
    patient: str = FhirId
    summary: str = Field(min_length=1, max_length=20000)
    follow_up_plan: str = Field(min_length=1, max_length=20000)
    reason: str = Field(min_length=1, max_length=2000)
    target: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"


class ContractBody(Body):
    patient: str = FhirId
    family_doctor: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    chc: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    district_hospital: str = FhirId
    municipal_hospital: str = FhirId
    start: dt.date | None = None
    declared_groups: list[Literal["disabled", "special-family"]] = Field(default_factory=list)


class OrderBody(Body):
    patient: str = FhirId
    system: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=64)


class DecisionBody(Body):
    recognise: bool
    prior: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)
