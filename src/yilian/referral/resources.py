"""Small readers and writers of the FHIR elements tiered care relies on (extensions, tags, refs).

Kept in one place so every module reads a Slot's channel or a Schedule's organization the same
way; the URIs are those of ``yilian.fhir.systems`` (documented in docs/referral.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from yilian.fhir import systems

Json = dict[str, Any]
# Shanghai keeps China Standard Time all year (UTC+8, no daylight saving).
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
COMMUNITY_REFERRAL = "community-referral"  # the reserved channel (code of systems.SLOT_CHANNEL)
RELEASED = "released-to-public"  # tag of a reserved slot that went back to the public pool


def ref(res_type: str, res_id: str, display: str | None = None) -> Json:
    out: Json = {"reference": f"{res_type}/{res_id}"}
    if display:
        out["display"] = display
    return out


def ref_id(reference: Any, res_type: str) -> str | None:
    """The id of a ``Type/id`` reference (or None when it points elsewhere or is absent)."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    kind, _, res_id = text.rpartition("/")
    if kind.rsplit("/", 1)[-1] != res_type or not res_id:
        return None
    return res_id


def coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def has_coding(concepts: Any, system: str, code: str | None = None) -> bool:
    items = concepts if isinstance(concepts, list) else [concepts]
    for concept in items:
        if not isinstance(concept, dict):
            continue
        for c in concept.get("coding", []):
            if c.get("system") == system and (code is None or c.get("code") == code):
                return True
    return False


def code_of(concepts: Any, system: str) -> str | None:
    items = concepts if isinstance(concepts, list) else [concepts]
    for concept in items:
        if isinstance(concept, dict):
            for c in concept.get("coding", []):
                if c.get("system") == system and isinstance(c.get("code"), str):
                    return str(c["code"])
    return None


def extension(resource: Json, url: str) -> Any:
    """The value[x] of the first extension with this url, or None."""
    for ext in resource.get("extension", []):
        if ext.get("url") == url:
            for key, value in ext.items():
                if key.startswith("value"):
                    return value
    return None


def set_extension(resource: Json, url: str, key: str, value: Any) -> None:
    others = [e for e in resource.get("extension", []) if e.get("url") != url]
    resource["extension"] = [*others, {"url": url, key: value}]


def drop_extension(resource: Json, url: str) -> None:
    others = [e for e in resource.get("extension", []) if e.get("url") != url]
    if others:
        resource["extension"] = others
    else:
        resource.pop("extension", None)


def set_tag(resource: Json, system: str, code: str | None) -> None:
    """Replace this system's tag (``None`` removes it)."""
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != system]
    if code is not None:
        tags.append({"system": system, "code": code})
    if tags:
        meta["tag"] = tags
    else:
        meta.pop("tag", None)
    if meta:
        resource["meta"] = meta
    else:
        resource.pop("meta", None)


def tag_of(resource: Json, system: str) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag", []):
        if tag.get("system") == system:
            return str(tag.get("code"))
    return None


def parse_instant(value: Any) -> dt.datetime | None:
    """A FHIR dateTime/instant as an aware UTC datetime (a bare date means its local midnight)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            moment = dt.datetime.fromisoformat(value).replace(tzinfo=CHINA_TIME)
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def instant(moment: dt.datetime) -> str:
    """A FHIR instant in China time, e.g. ``2026-11-30T08:00:00+08:00``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA_TIME).isoformat(timespec="seconds")


def slot_channel(slot: Json) -> str | None:
    value = extension(slot, systems.EXT_SLOT_CHANNEL)
    return str(value) if value else None
