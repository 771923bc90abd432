"""The shipped views: ViewDefinitions (views/*.json), their system constants, derived tables.

ViewDefinitions are JSON (they are the portable SQL-on-FHIR artefact, runnable by any other
implementation), so the URIs they filter on are written in them as ``constant`` values. Those
values must equal yilian's constants in ``yilian.fhir.systems`` (written once there): every
constant whose name is in ``SYSTEM_CONSTANTS`` is checked when the views are loaded, so a
changed URI fails loudly instead of silently emptying a column.

Derived tables join two materialised views where the SQL-on-FHIR model (one resource type per
view, no joins) cannot: a referral and the Task that tracks it, a contract's EpisodeOfCare and
its 1+1+1 CareTeam. Their SQL is plain ANSI (LEFT JOIN, ROW_NUMBER) that DuckDB and Spark both
run unchanged; they are recomputed from the base views after every refresh.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources as package_files
from typing import Any

from yilian.fhir import systems

# ViewDefinition constant name -> the value it must carry (the project's single source).
SYSTEM_CONSTANTS: dict[str, str] = {
    "resident_id_system": systems.RESIDENT_ID,
    "subdistrict_ext": systems.EXT_SUBDISTRICT,
    "tier_system": systems.ORGANIZATION_TIER,
    "type_system": systems.ORGANIZATION_TYPE,
    "department_system": systems.DEPARTMENT,
    "uscc_system": systems.USCC,
    "snomed": systems.SNOMED_CT,
    "contract_system": systems.FAMILY_DOCTOR_CONTRACT,
    "slot_channel_system": systems.SLOT_CHANNEL,
    "slot_released_ext": systems.EXT_SLOT_RELEASED,
}


class CatalogError(ValueError):
    """A shipped view disagrees with the project's constants."""


def _constant_value(constant: dict[str, Any]) -> Any:
    values = [v for k, v in constant.items() if k.startswith("value")]
    return values[0] if len(values) == 1 else None


def check_constants(view: dict[str, Any]) -> None:
    """Raise if a constant named in ``SYSTEM_CONSTANTS`` carries another URI."""
    for i, constant in enumerate(view.get("constant", [])):
        want = SYSTEM_CONSTANTS.get(str(constant.get("name")))
        got = _constant_value(constant)
        if want is not None and got != want:
            raise CatalogError(
                f"view {view.get('name')!r} constant[{i}] ({constant.get('name')}) is {got!r}; "
                f"yilian.fhir.systems says {want!r}"
            )


def core_views() -> dict[str, dict[str, Any]]:
    """The shipped ViewDefinitions, by name (documented in docs/analytics.md)."""
    folder = package_files.files("yilian.analytics") / "views"
    out: dict[str, dict[str, Any]] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            view = json.loads(item.read_text(encoding="utf-8"))
            check_constants(view)
            out[view["name"]] = view
    return out


@dataclass(frozen=True)
class Derived:
    """A table computed by SQL over materialised views (names in ``inputs``)."""

    name: str
    inputs: tuple[str, ...]
    sql: str


# The latest Task per referral (a request may be re-dispatched; the newest Task holds its state).
REFERRALS = Derived(
    "referrals",
    ("referral_requests", "referral_tasks"),
    """
    SELECT r.id, r.last_updated, r.status, r.intent, r.priority, r.code, r.code_text,
           r.patient, r.encounter, r.authored_on, r.requester, r.performer, r.reason_code,
           t.id AS task_id, t.status AS task_status, t.business_status AS task_business_status,
           t.owner AS task_owner, t.last_modified AS task_last_modified
    FROM referral_requests r
    LEFT JOIN (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY request ORDER BY last_modified DESC, last_updated DESC, id DESC) AS k
        FROM referral_tasks
    ) t ON t.request = CONCAT('ServiceRequest/', r.id) AND t.k = 1
    """,
)

# One row per contract: the EpisodeOfCare (status, period, CHC, family doctor) and the choices
# of its CareTeam (synth/contracts.py writes both with the same id; the episode names its team).
CONTRACTS = Derived(
    "contracts",
    ("contract_episodes", "contract_teams"),
    """
    SELECT e.id, e.last_updated, e.status, e.patient, e.period_start, e.period_end,
           e.managing_org AS chc, COALESCE(e.care_manager, c.family_doctor) AS family_doctor,
           c.district_hospital, c.municipal_hospital, c.id AS care_team,
           c.status AS care_team_status
    FROM contract_episodes e
    LEFT JOIN contract_teams c ON e.team = CONCAT('CareTeam/', c.id)
    """,
)

DERIVED: tuple[Derived, ...] = (REFERRALS, CONTRACTS)


def date_columns(table: str, columns: Sequence[str]) -> tuple[str, ...]:
    """The ``dateTime`` columns among ``columns`` of the view or derived table ``table``.

    A view's are those whose ViewDefinition ``type`` is ``dateTime``; a derived table's are
    its columns named like a ``dateTime`` column of one of its inputs (copied through
    unchanged). The DuckDB copy of the views (viewstore.py) adds a typed ``DATE`` beside each,
    so queries by day or week need no per-row cast.
    """
    views = _view_dates()
    derived = {d.name: d for d in DERIVED}
    if table in derived:
        wanted = {c for i in derived[table].inputs for c in views.get(i, ())}
    else:
        wanted = set(views.get(table, ()))
    return tuple(c for c in columns if c in wanted)


@cache
def _view_dates() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, view in core_views().items():
        cols = [c for sel in _selects(view.get("select", [])) for c in sel.get("column", [])]
        out[name] = tuple(str(c["name"]) for c in cols if c.get("type") == "dateTime")
    return out


def _selects(selects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ``select`` element, nested ``select`` and ``unionAll`` branches included."""
    found: list[dict[str, Any]] = []
    for sel in selects:
        found.append(sel)
        found.extend(_selects(sel.get("select", [])))
        found.extend(_selects(sel.get("unionAll", [])))
    return found
