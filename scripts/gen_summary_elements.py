"""Derive the top-level summary and mandatory elements of every R4 resource type.

``_summary=true`` keeps the elements the base StructureDefinitions mark ``isSummary`` and
``_summary=text`` keeps the mandatory (``min > 0``) ones
(https://hl7.org/fhir/R4/search.html#summary). The authoritative source is the
StructureDefinitions in ``hl7.fhir.r4.examples@4.0.1``; re-run after changing FHIR versions:

    python scripts/gen_summary_elements.py .cache/hl7-r4-examples/package
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/yilian/fhir/search/summary_elements.json"


def top_level(definition: dict[str, object]) -> dict[str, list[str]]:
    resource_type = str(definition["type"])
    summary: list[str] = []
    mandatory: list[str] = []
    snapshot = definition["snapshot"]
    assert isinstance(snapshot, dict)
    for element in snapshot["element"]:
        path = element["path"].split(".")
        if len(path) != 2 or path[0] != resource_type:
            continue
        if element.get("isSummary"):
            summary.append(path[1])
        if int(element.get("min", 0)) > 0:
            mandatory.append(path[1])
    return {"summary": summary, "mandatory": mandatory}


def main(package: Path) -> None:
    result: dict[str, dict[str, list[str]]] = {}
    for path in sorted(package.glob("StructureDefinition-*.json")):
        definition = json.loads(path.read_text("utf-8"))
        if definition.get("kind") != "resource" or definition.get("derivation") != "specialization":
            continue
        if definition.get("abstract"):
            continue
        result[definition["type"]] = top_level(definition)
    OUT.write_text(json.dumps(result, indent=0, sort_keys=True) + "\n", "utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
