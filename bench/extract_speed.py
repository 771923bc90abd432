"""Search-index extraction rate on one core: Synthea resources per second through
``extract_index_rows`` (the store's per-resource cost of indexing, without validation or SQL).

Usage: .venv/bin/python bench/extract_speed.py [SYNTHEA_DIR] [ROUNDS]
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from yilian.fhir.searchparams.extract import extract_index_rows


def load(directory: Path) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        resources += [entry["resource"] for entry in bundle["entry"]]
    return resources


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/fhir/synthea-r4")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    resources = load(directory)
    rows: Counter[str] = Counter()
    for resource in resources:  # warm-up: compiles every type's plan once
        for kind, found in extract_index_rows(resource).items():
            rows[kind] += len(found)
    best_wall = best_cpu = float("inf")
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for resource in resources:
            extract_index_rows(resource)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    count = len(resources)
    print(f"{count} Synthea resources, {sum(rows.values())} index rows ({dict(rows)})")
    # CPU time is what one core delivers when the machine is shared; wall time is what you waited.
    print(f"best of {rounds}, CPU time: {count / best_cpu:,.0f} resources/s")
    print(f"best of {rounds}, wall time: {count / best_wall:,.0f} resources/s")
    print(f"{best_cpu / count * 1e6:.1f} us CPU per resource")


if __name__ == "__main__":
    main()
