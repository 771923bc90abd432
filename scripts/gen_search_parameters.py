"""Derive yilian's search-parameter registry from the official R4 definitions.

The authoritative source is ``Bundle-searchParams.json`` in the npm package
``hl7.fhir.r4.examples@4.0.1`` (CC0). We keep only what the store needs (code, type, the
FHIRPath expression split per base resource type, targets, composite components) so the
package does not ship the 1.4 MB original. Re-run after changing FHIR versions:

    python scripts/gen_search_parameters.py .cache/hl7-r4-examples/package/Bundle-searchParams.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/yilian/fhir/searchparams/r4.json"


def split_top_level(expression: str) -> list[str]:
    """Split a FHIRPath union ``a | b | c`` at the top level only (not inside parentheses)."""
    parts, depth, current = [], 0, []
    for ch in expression:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def root_of(term: str) -> str:
    return term.lstrip("(").split(".", 1)[0].split(" ", 1)[0]


def expression_for(base: str, expression: str, bases: list[str]) -> str:
    terms = split_top_level(expression)
    mine = [t for t in terms if root_of(t) == base]
    if not mine and len(bases) == 1:
        # e.g. InsurancePlan "name | alias": unprefixed paths relative to the resource.
        mine = [t if root_of(t) == base else f"{base}.{t}" for t in terms]
    return " | ".join(mine)


def main(source: str) -> None:
    bundle = json.loads(Path(source).read_text(encoding="utf-8"))
    by_url: dict[str, str] = {}
    out: dict[str, dict[str, dict[str, object]]] = {}
    for entry in bundle["entry"]:
        sp = entry["resource"]
        by_url[sp["url"]] = sp["code"]
    for entry in bundle["entry"]:
        sp = entry["resource"]
        for base in sp["base"]:
            expression = sp.get("expression") or ""
            own = expression_for(base, expression, sp["base"]) if expression else ""
            if base in ("Resource", "DomainResource"):
                own = expression  # e.g. "Resource.id": applied to every type by the registry
            item: dict[str, object] = {"type": sp["type"], "expression": own}
            if sp.get("target"):
                item["target"] = sorted(sp["target"])
            if sp.get("component"):
                item["component"] = [
                    {
                        "code": by_url.get(c["definition"], c["definition"]),
                        "expression": c["expression"],
                    }
                    for c in sp["component"]
                ]
            if sp.get("modifier"):
                item["modifier"] = sp["modifier"]
            out.setdefault(base, {})[sp["code"]] = item
    OUT.write_text(
        json.dumps(out, indent=0, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {sum(len(v) for v in out.values())} parameters for {len(out)} bases to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
