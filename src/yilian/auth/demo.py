"""Demo users for the synthetic district: one per role, linked to real records of the district.

``choose(directory)`` reads the generator's NDJSON and picks, deterministically: the family
doctor with the largest contracted panel (role family_doctor at his CHC), a contracted resident
of that panel (resident), that CHC's administrator (facility_admin), a doctor of Tongren
Hospital, the regional medical center (specialist), the district CDC (cdc) and a health
commission manager (manager). ``yilian synth`` writes the choice as ``demo-users.json`` beside
its NDJSON; ``yilian users demo DIR`` creates the users (re-running keeps those that exist).

Demo passwords are one shared, documented value (``DEMO_PASSWORD``): the demo holds synthetic
people only, and a newcomer must be able to sign in as every role from the README.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.auth.principal import Role
from yilian.auth.service import AuthError, create_user, find_user

# arch: store-access — checks that a demo user's linked resource exists (ids only, no content).
from yilian.fhir.models import ResourceRow

DEMO_FILE = "demo-users.json"
DEMO_PASSWORD = "yilian-demo"  # synthetic data only; docs/authorization.md "Demo users"
SPECIALIST_HOSPITAL = "tongren"  # the regional medical center (docs/synth.md ids)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    practitioner_id: str | None = None
    patient_id: str | None = None
    organization_id: str | None = None


# The health commission's data steward (patient matching review) stands for no record.
STEWARD = DemoUser("steward", Role.STEWARD, "区卫健委 主索引数据管理员", None, None, None)


def _lines(directory: Path, res_type: str) -> Iterator[dict[str, Any]]:
    for name in (f"{res_type}.ndjson", f"{res_type}.ndjson.gz"):
        path = directory / name
        if not path.exists():
            continue
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def _ref_id(value: Any, res_type: str) -> str | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    if isinstance(ref, str) and ref.startswith(f"{res_type}/"):
        return ref.split("/", 1)[1]
    return None


def _name(resource: dict[str, Any] | None, fallback: str) -> str:
    names = (resource or {}).get("name") or []
    if isinstance(names, list) and names and isinstance(names[0], dict):
        return str(names[0].get("text") or fallback)
    if isinstance(names, str):
        return names
    return fallback


def choose(directory: Path) -> list[DemoUser]:
    """Pick the demo users from a generated district (see the module docstring)."""
    panels: Counter[str] = Counter()
    chc_of: dict[str, str] = {}
    first_patient: dict[str, str] = {}
    for episode in _lines(directory, "EpisodeOfCare"):
        doctor = _ref_id(episode.get("careManager"), "Practitioner")
        patient = _ref_id(episode.get("patient"), "Patient")
        if episode.get("status") != "active" or doctor is None or patient is None:
            continue
        panels[doctor] += 1
        chc_of.setdefault(
            doctor, _ref_id(episode.get("managingOrganization"), "Organization") or ""
        )
        if patient < first_patient.get(doctor, "\uffff"):
            first_patient[doctor] = patient
    if not panels:
        raise AuthError(f"{directory} has no active family-doctor contracts [rule: demo-district]")
    doctor = min(panels, key=lambda d: (-panels[d], d))
    chc = chc_of[doctor]
    specialist = min(
        (
            role["practitioner"]["reference"].split("/", 1)[1]
            for role in _lines(directory, "PractitionerRole")
            if _ref_id(role.get("organization"), "Organization") == SPECIALIST_HOSPITAL
            and any(
                c.get("code") == "doctor"
                for concept in role.get("code", [])
                for c in concept.get("coding", [])
            )
        ),
        default=None,
    )
    cdc = min(
        (
            org["id"]
            for org in _lines(directory, "Organization")
            if any(
                c.get("code") == "cdc"
                for concept in org.get("type", [])
                for c in concept.get("coding", [])
            )
        ),
        default=None,
    )
    if specialist is None or cdc is None:
        raise AuthError(f"{directory} lacks a Tongren doctor or the CDC [rule: demo-district]")
    wanted = {doctor, specialist, first_patient[doctor], chc, cdc, SPECIALIST_HOSPITAL}
    names = {
        r["id"]: _name(r, r["id"])
        for t in ("Practitioner", "Patient", "Organization")
        for r in _lines(directory, t)
        if r.get("id") in wanted
    }
    return [
        DemoUser("doctor", Role.FAMILY_DOCTOR, f"{names[doctor]} 家庭医生", doctor, None, chc),
        DemoUser(
            "specialist",
            Role.SPECIALIST,
            f"{names[specialist]} 同仁医院",
            specialist,
            None,
            SPECIALIST_HOSPITAL,
        ),
        DemoUser("cdc", Role.CDC, "疾控中心 流行病学", None, None, cdc),
        DemoUser("manager", Role.MANAGER, "区卫健委 管理", None, None, None),
        DemoUser("facility", Role.FACILITY_ADMIN, f"{names.get(chc, chc)} 管理员", None, None, chc),
        DemoUser(
            "resident", Role.RESIDENT, names[first_patient[doctor]], None, first_patient[doctor]
        ),
        STEWARD,
    ]


def write_choice(directory: Path) -> Path:
    """``demo-users.json`` beside the district's NDJSON."""
    path = directory / DEMO_FILE
    users = [asdict(u) for u in choose(directory)]
    path.write_text(json.dumps(users, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_choice(directory: Path) -> list[DemoUser]:
    """The chosen users: ``demo-users.json`` if present, else chosen from the NDJSON now."""
    path = directory / DEMO_FILE
    if not path.exists():
        return choose(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        users = [DemoUser(**item) for item in data]
    except (ValueError, TypeError) as exc:
        raise AuthError(f"{path} is not a list of demo users: {exc} [rule: demo-file]") from exc
    if all(u.role != Role.STEWARD for u in users):  # a file written before the role existed
        users.append(STEWARD)
    return users


def _exists(session: Session, res_type: str, res_id: str | None) -> bool:
    if res_id is None:
        return True
    return (
        session.execute(
            select(ResourceRow.pk).where(
                ResourceRow.res_type == res_type,
                ResourceRow.res_id == res_id,
                ResourceRow.deleted.is_(False),
            )
        ).first()
        is not None
    )


def create_demo_users(
    session: Session, users: list[DemoUser], *, password: str = DEMO_PASSWORD
) -> list[tuple[DemoUser, bool]]:
    """Create each user that does not exist yet; (user, created) pairs. The linked records must
    be in the store (run ``yilian load DIR`` first)."""
    done: list[tuple[DemoUser, bool]] = []
    for user in users:
        if find_user(session, user.username) is not None:
            done.append((user, False))
            continue
        for res_type, res_id in (
            ("Practitioner", user.practitioner_id),
            ("Patient", user.patient_id),
            ("Organization", user.organization_id),
        ):
            if not _exists(session, res_type, res_id):
                raise AuthError(
                    f"demo user {user.username}: {res_type}/{res_id} is not in the store; load "
                    "the district first (yilian load DIR) [rule: demo-links]"
                )
        create_user(
            session,
            user.username,
            Role(user.role),
            display_name=user.display_name,
            password=password,
            practitioner_id=user.practitioner_id,
            patient_id=user.patient_id,
            organization_id=user.organization_id,
        )
        done.append((user, True))
    return done
