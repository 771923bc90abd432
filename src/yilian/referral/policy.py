"""Configuration of tiered care: slot reservation, referral deadlines, recognition items.

All three are JSON files in ``rules/`` with their sources cited inside; a deployment points
``YILIAN_REFERRAL_POLICY``, ``YILIAN_REFERRAL_DEADLINES`` or ``YILIAN_RECOGNITION_ITEMS`` at its own
copy. Every file is validated on load: a bad value raises ``PolicyError`` naming the field, the
rule and the value, never silently coerced.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

RESERVATION_FIELDS = (
    "public_window_days",
    "chc_advance_days",
    "urgent_window_days",
    "release_hours_before_start",
    "reserved_share",
)
MATCH_KEYS = ("organization", "department", "clinic_level")
CLINIC_LEVELS = ("expert", "general")


class PolicyError(ValueError):
    """A configuration file breaks a rule; the message names the file, field and value."""


@dataclass(frozen=True)
class Reservation:
    """How one hospital department's slots are shared between CHC referrals and the public."""

    public_window_days: int  # the public may book this many days before a slot starts
    chc_advance_days: int  # CHCs may book reserved slots this many days earlier still
    urgent_window_days: int  # slots this close are offered to urgent referrals
    release_hours_before_start: int  # unused reserved slots go public this long before start
    reserved_share: float  # share of each day's slots reserved for community referrals


@dataclass(frozen=True)
class ReservationPolicy:
    defaults: dict[str, Any]
    rules: tuple[dict[str, Any], ...]

    def for_department(
        self, organization: str, department: str, clinic_level: str = "general"
    ) -> Reservation:
        """The defaults, overridden by every matching rule, the more specific ones last."""
        merged = dict(self.defaults)
        asked = {"organization": organization, "department": department}
        asked["clinic_level"] = clinic_level
        matching = [
            r for r in self.rules if all(r.get(k, asked[k]) == asked[k] for k in MATCH_KEYS)
        ]
        for rule in sorted(matching, key=lambda r: sum(k in r for k in MATCH_KEYS)):
            merged.update({k: rule[k] for k in RESERVATION_FIELDS if k in rule})
        return Reservation(**{k: merged[k] for k in RESERVATION_FIELDS})


@dataclass(frozen=True)
class Deadlines:
    up_urgent_follow_up_days: int
    up_routine_follow_up_days: int
    down_action_days: int


@dataclass(frozen=True)
class RecognitionItem:
    system: str
    code: str
    display: str
    kind: str  # lab | imaging
    validity_days: int


def _read(env: str, name: str) -> tuple[str, Any]:
    override = os.environ.get(env)
    if override:
        path = Path(override)
        text = path.read_text(encoding="utf-8")
        where = str(path)
    else:
        text = (resources.files("yilian.referral") / "rules" / name).read_text(encoding="utf-8")
        where = f"yilian/referral/rules/{name}"
    try:
        return where, json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{where}: not valid JSON ({exc})") from exc


def _number(where: str, field: str, value: Any, *, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PolicyError(f"{where}: {field} must be a number in [{low}, {high}], got {value!r}")


def _check_reservation(where: str, values: dict[str, Any], *, complete: bool) -> None:
    for key in RESERVATION_FIELDS:
        if key not in values:
            if complete:
                raise PolicyError(f"{where}: {key} is required")
            continue
        if key == "reserved_share":
            _number(where, key, values[key], low=0.0, high=1.0)
        else:
            _number(where, key, values[key], low=0, high=366 * 24)
            if not isinstance(values[key], int):
                raise PolicyError(f"{where}: {key} must be a whole number, got {values[key]!r}")


@cache
def reservation_policy() -> ReservationPolicy:
    where, data = _read("YILIAN_REFERRAL_POLICY", "reservation_policy.json")
    defaults = data.get("defaults")
    if not isinstance(defaults, dict):
        raise PolicyError(f"{where}: 'defaults' must be an object")
    _check_reservation(f"{where} defaults", defaults, complete=True)
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise PolicyError(f"{where}: 'rules' must be a list")
    for index, rule in enumerate(rules):
        label = f"{where} rules[{index}]"
        if not isinstance(rule, dict) or not any(k in rule for k in MATCH_KEYS):
            raise PolicyError(f"{label}: a rule names an organization, department or clinic_level")
        if "clinic_level" in rule and rule["clinic_level"] not in CLINIC_LEVELS:
            raise PolicyError(f"{label}: clinic_level must be one of {CLINIC_LEVELS}")
        _check_reservation(label, rule, complete=False)
    return ReservationPolicy(dict(defaults), tuple(rules))


@cache
def deadlines() -> Deadlines:
    where, data = _read("YILIAN_REFERRAL_DEADLINES", "deadlines.json")
    values = {}
    for key in ("up_urgent_follow_up_days", "up_routine_follow_up_days", "down_action_days"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 366:
            raise PolicyError(f"{where}: {key} must be a whole number of days in [1, 366]")
        values[key] = value
    return Deadlines(**values)


@cache
def recognition_items() -> tuple[RecognitionItem, ...]:
    where, data = _read("YILIAN_RECOGNITION_ITEMS", "recognition_items.json")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise PolicyError(f"{where}: 'items' must be a non-empty list")
    out = []
    for index, raw in enumerate(items):
        label = f"{where} items[{index}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{label}: must be an object")
        for key in ("system", "code", "display"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise PolicyError(f"{label}: {key} must be a non-empty string")
        if raw.get("kind") not in ("lab", "imaging"):
            raise PolicyError(f"{label}: kind must be 'lab' or 'imaging'")
        days = raw.get("validity_days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise PolicyError(f"{label}: validity_days must be a whole number in [1, 3660]")
        out.append(RecognitionItem(raw["system"], raw["code"], raw["display"], raw["kind"], days))
    return tuple(out)


def recognition_item(system: str, code: str) -> RecognitionItem | None:
    for item in recognition_items():
        if item.system == system and item.code == code:
            return item
    return None
