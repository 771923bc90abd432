"""A small district generated once per test session and read back from its NDJSON files."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from yilian.synth.generator import DistrictGenerator, SynthConfig
from yilian.synth.writer import NdjsonWriter

END = dt.date(2026, 10, 31)
SMALL = SynthConfig(scale=0.01, years=3, seed=7, end_date=END)


def generate(config: SynthConfig, out: Path, *, compress: bool = False) -> dict[str, int]:
    with NdjsonWriter(out, compress=compress) as writer:
        writer.write_all(DistrictGenerator(config).resources())
    return dict(writer.counts)


def read_ndjson(directory: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(directory.glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            resource = orjson.loads(line)
            found[resource["resourceType"]].append(resource)
    return dict(found)


@pytest.fixture(scope="session")
def district(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """About 6,900 residents (scale 0.01) with three years of records."""
    out = tmp_path_factory.mktemp("district")
    generate(SMALL, out)
    return read_ndjson(out)
