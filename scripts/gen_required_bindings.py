"""Derive the required code bindings of R4 from the official definitions.

Neither fhirclient nor fhir.resources checks required bindings (``gender: "m"`` passes both), so
yilian checks them itself. The source is the unpacked npm package ``hl7.fhir.r4.examples@4.0.1``
(CC0): its StructureDefinitions give every element with ``binding.strength = required``, its
ValueSets and CodeSystems give the allowed codes. A value set is expanded only when every part of
it can be expanded from what the package holds (a local CodeSystem with ``content = complete``, or
an explicit list of concepts); the others (SNOMED CT, UCUM, BCP-47, MIME types, ...) are listed
under ``skipped`` with the reason, and are not checked. Re-run after changing FHIR versions:

    python scripts/gen_required_bindings.py .cache/hl7-r4-examples/package

The output (``src/yilian/fhir/validation/required_bindings.json``) holds:

- ``bindings``: element definition path (``Patient.gender``, ``Observation.value[x]``) -> value set
  URL, for the elements of type code / Coding / CodeableConcept;
- ``valueSets``: value set URL -> {code system URL -> sorted codes};
- ``contentReferences``: element path -> the path whose definition it reuses
  (``Questionnaire.item.item`` -> ``Questionnaire.item``);
- ``types``: the names of the R4 complex data types and resources (a walker switches to the type's
  own definition when it enters an element of that type);
- ``skipped``: value set URL -> why it is not checked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src/yilian/fhir/validation/required_bindings.json"
CODE_TYPES = {"code", "Coding", "CodeableConcept"}


class Unexpandable(Exception):
    """The value set needs something the package does not hold (an external terminology)."""


def load(package: Path, prefix: str) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(package.glob(f"{prefix}-*.json"))
    ]


def flatten(
    concepts: Iterable[dict[str, Any]], parent: str | None, out: dict[str, str | None]
) -> None:
    """Collect a CodeSystem's nested concepts, remembering each one's parent (for is-a filters)."""
    for concept in concepts:
        out[concept["code"]] = parent
        flatten(concept.get("concept", ()), concept["code"], out)


class Expander:
    def __init__(self, code_systems: list[dict[str, Any]], value_sets: list[dict[str, Any]]):
        self.systems: dict[str, dict[str, str | None]] = {}
        for cs in code_systems:
            if cs.get("content") == "complete" and "url" in cs:
                codes: dict[str, str | None] = {}
                flatten(cs.get("concept", ()), None, codes)
                self.systems[cs["url"]] = codes
        self.value_sets = {vs["url"]: vs for vs in value_sets if "url" in vs}
        self.cache: dict[str, dict[str, set[str]]] = {}

    def expand(self, url: str) -> dict[str, set[str]]:
        url = url.split("|", 1)[0]
        if url not in self.cache:
            vs = self.value_sets.get(url)
            if vs is None:
                raise Unexpandable(f"value set {url} is not in the package")
            compose = vs.get("compose")
            if not compose:
                raise Unexpandable(f"value set {url} has no compose")
            result: dict[str, set[str]] = {}
            for include in compose.get("include", ()):
                for system, codes in self._part(include).items():
                    result.setdefault(system, set()).update(codes)
            for exclude in compose.get("exclude", ()):
                for system, codes in self._part(exclude).items():
                    result.get(system, set()).difference_update(codes)
            self.cache[url] = result
        return self.cache[url]

    def _part(self, part: dict[str, Any]) -> dict[str, set[str]]:
        if part.get("valueSet"):
            if part.get("system") or len(part["valueSet"]) > 1:
                raise Unexpandable("intersection of value sets")
            return self.expand(part["valueSet"][0])
        system = part.get("system")
        if not system:
            raise Unexpandable("include without a system")
        if part.get("concept"):
            return {system: {c["code"] for c in part["concept"]}}
        codes = self.systems.get(system)
        if codes is None:
            raise Unexpandable(f"code system {system} is not available completely in the package")
        if not part.get("filter"):
            return {system: set(codes)}
        selected = set(codes)
        for flt in part["filter"]:
            selected &= self._filter(codes, flt)
        return {system: selected}

    @staticmethod
    def _filter(codes: dict[str, str | None], flt: dict[str, Any]) -> set[str]:
        if flt.get("property") != "concept" or flt.get("op") not in ("is-a", "descendent-of"):
            raise Unexpandable(f"filter {flt.get('property')} {flt.get('op')} not supported")
        root = flt["value"]
        if root not in codes:
            raise Unexpandable(f"filter root {root} is not in the code system")

        def descends(code: str) -> bool:
            parent = codes[code]
            while parent is not None:
                if parent == root:
                    return True
                parent = codes[parent]
            return False

        found = {code for code in codes if descends(code)}
        if flt["op"] == "is-a":
            found.add(root)
        return found


def base_definitions(package: Path) -> list[dict[str, Any]]:
    """The definitions of the R4 resources and complex data types themselves (not profiles)."""
    return [
        sd
        for sd in load(package, "StructureDefinition")
        if sd.get("kind") in ("resource", "complex-type")
        and sd.get("derivation") in ("specialization", None)
        and sd.get("type") == sd.get("id")
    ]


def main(package_dir: str) -> None:
    package = Path(package_dir)
    expander = Expander(load(package, "CodeSystem"), load(package, "ValueSet"))
    bindings: dict[str, str] = {}
    references: dict[str, str] = {}
    skipped: dict[str, str] = {}
    used: dict[str, dict[str, list[str]]] = {}
    definitions = base_definitions(package)
    for sd in definitions:
        for element in sd["snapshot"]["element"]:
            if element.get("contentReference"):
                references[element["path"]] = element["contentReference"].lstrip("#")
            binding = element.get("binding") or {}
            codes = {t.get("code") for t in element.get("type", ())}
            if binding.get("strength") != "required" or not codes & CODE_TYPES:
                continue
            url = binding["valueSet"].split("|", 1)[0]
            try:
                expansion = expander.expand(url)
            except Unexpandable as exc:
                skipped[url] = str(exc)
                continue
            used[url] = {system: sorted(c) for system, c in sorted(expansion.items())}
            bindings[element["path"]] = url
    out = {
        "source": "hl7.fhir.r4.examples 4.0.1 (StructureDefinition, ValueSet, CodeSystem)",
        "bindings": dict(sorted(bindings.items())),
        "valueSets": dict(sorted(used.items())),
        "contentReferences": dict(sorted(references.items())),
        "types": sorted({sd["type"] for sd in definitions}),
        "skipped": dict(sorted(skipped.items())),
    }
    OUT.write_text(json.dumps(out, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"wrote {len(bindings)} required bindings over {len(used)} value sets "
        f"({len(skipped)} value sets skipped) to {OUT}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
