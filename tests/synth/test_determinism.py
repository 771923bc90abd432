"""Same seed and options give the same bytes; another seed gives another district."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from tests.synth.conftest import SMALL, generate

TINY = dataclasses.replace(SMALL, scale=0.0005)


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    generate(TINY, tmp_path / "a")
    generate(TINY, tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_gzip_output_is_deterministic_too(tmp_path: Path) -> None:
    generate(TINY, tmp_path / "a", compress=True)
    generate(TINY, tmp_path / "b", compress=True)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert all(name.endswith(".ndjson.gz") for name in digest(tmp_path / "a"))


def test_another_seed_another_district_but_the_same_directory(tmp_path: Path) -> None:
    generate(TINY, tmp_path / "a")
    generate(dataclasses.replace(TINY, seed=TINY.seed + 1), tmp_path / "b")
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a["Patient.ndjson"] != b["Patient.ndjson"]
    assert a["Organization.ndjson"] == b["Organization.ndjson"]
    assert a["Location.ndjson"] == b["Location.ndjson"]
