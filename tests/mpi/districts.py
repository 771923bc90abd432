"""Small synthetic districts of Patients with duplicates, for the matcher's tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from yilian.synth.duplicates import DuplicateMaker, hospitals
from yilian.synth.generator import DistrictGenerator, SynthConfig
from yilian.synth.writer import NdjsonWriter

END = dt.date(2026, 10, 31)


def write_patients(out: Path, *, scale: float, seed: int, rate: float = 0.3) -> Path:
    """``out/Patient.ndjson`` (originals, re-registrations, twins) and ``out/mpi-truth.csv``."""
    config = SynthConfig(scale=scale, years=1, seed=seed, end_date=END, visit_multiplier=0)
    generator = DistrictGenerator(config)
    maker = DuplicateMaker(rate, seed, hospitals(generator.network), END)
    with NdjsonWriter(out) as writer:
        writer.write_all(
            r for r in maker.process(generator.resources()) if r["resourceType"] == "Patient"
        )
    maker.write_truth(out)
    return out
