"""Duplicate registrations (``--duplicates``): what the maker writes, and that it is opt-in."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pypinyin import lazy_pinyin
from typer.testing import CliRunner

from yilian.cli import app
from yilian.fhir import systems
from yilian.mpi.chinese_names import VARIANTS
from yilian.mpi.resident_id import has_valid_check_digit
from yilian.synth.duplicates import (
    HOMOPHONES,
    TRADITIONAL,
    TRUTH_FILE,
    DuplicateMaker,
    hospitals,
)
from yilian.synth.generator import DistrictGenerator, SynthConfig

END = dt.date(2026, 10, 31)


def test_homophones_really_sound_the_same() -> None:
    for ch, others in HOMOPHONES.items():
        for other in others:
            assert lazy_pinyin(ch) == lazy_pinyin(other), (ch, other)


def test_traditional_forms_are_undone_by_the_matcher() -> None:
    for simplified, traditional in TRADITIONAL.items():
        assert VARIANTS[traditional] == simplified


@pytest.fixture(scope="module")
def made() -> tuple[list[dict[str, Any]], DuplicateMaker]:
    generator = DistrictGenerator(
        SynthConfig(scale=0.003, years=1, seed=5, end_date=END, visit_multiplier=0)
    )
    maker = DuplicateMaker(0.5, 5, hospitals(generator.network), END)
    patients = [r for r in maker.process(generator.resources()) if r["resourceType"] == "Patient"]
    return patients, maker


def _rid(patient: dict[str, Any]) -> str | None:
    return next(
        (i["value"] for i in patient["identifier"] if i["system"] == systems.RESIDENT_ID), None
    )


def test_truth_covers_every_patient_and_kinds_are_plausible(
    made: tuple[list[dict[str, Any]], DuplicateMaker],
) -> None:
    patients, maker = made
    truth = {row[0]: row for row in maker.truth}
    assert set(truth) == {p["id"] for p in patients}
    kinds = Counter(row[3] for row in maker.truth)
    originals = kinds["original"]
    # rate 0.5, a quarter of those twice: about 0.62 duplicates per resident
    assert 0.5 * originals < kinds["duplicate"] < 0.75 * originals
    assert kinds["twin"] > 0
    by_id = {p["id"]: p for p in patients}
    for patient_id, entity, _household, kind in maker.truth:
        if kind == "duplicate":
            assert patient_id.startswith(entity + "-d")
            mrn = [
                i for i in by_id[patient_id]["identifier"] if i["type"]["coding"][0]["code"] == "MR"
            ]
            assert mrn and mrn[0]["system"].startswith(systems.MRN_PREFIX)


def test_twins_share_the_household_but_not_the_person(
    made: tuple[list[dict[str, Any]], DuplicateMaker],
) -> None:
    patients, maker = made
    by_id = {p["id"]: p for p in patients}
    for patient_id, entity, household, kind in maker.truth:
        if kind != "twin":
            continue
        twin, sibling = by_id[patient_id], by_id[patient_id.removesuffix("-twin")]
        assert entity == patient_id and twin["birthDate"] == sibling["birthDate"]
        assert twin["name"][0]["family"] == sibling["name"][0]["family"]
        assert twin["name"][0]["given"] != sibling["name"][0]["given"]
        assert twin["address"][0]["text"] == household == sibling["address"][0]["text"]
        assert has_valid_check_digit(_rid(twin) or "") and _rid(twin) != _rid(sibling)
        # outside the allocator's range, so never another resident's number
        assert int((_rid(twin) or "")[14:17]) >= 901


def test_duplicates_carry_the_errors_clerks_make(
    made: tuple[list[dict[str, Any]], DuplicateMaker],
) -> None:
    patients, _ = made
    by_id = {p["id"]: p for p in patients}
    dups = [p for p in patients if "-d" in p["id"]]
    original = [by_id[p["id"].rsplit("-d", 1)[0]] for p in dups]
    missing_id = sum(_rid(d) is None for d in dups)
    legacy = sum(len(_rid(d) or "") == 15 for d in dups)
    renamed = sum(
        d["name"][0]["given"] != o["name"][0]["given"] for d, o in zip(dups, original, strict=True)
    )
    moved = sum(
        (d.get("address") or [{}])[0].get("text") != o["address"][0]["text"]
        for d, o in zip(dups, original, strict=True)
    )
    assert missing_id > 0.1 * len(dups) and legacy > 0 and renamed > 0.1 * len(dups)
    assert moved > 0.1 * len(dups)


def test_rate_is_validated() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        DuplicateMaker(1.5, 1, [], END)


def test_cli_writes_truth_only_when_asked(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["synth", "--scale", "0.001", "--years", "1", "--visits", "0"]
    plain = runner.invoke(app, [*args, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert not (tmp_path / "plain" / TRUTH_FILE).exists()
    result = runner.invoke(app, [*args, "--duplicates", "0.3", "--out", str(tmp_path / "dup")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "dup" / TRUTH_FILE).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["kind"] for r in rows} >= {"original", "duplicate"}
    bad = runner.invoke(app, [*args, "--duplicates", "2", "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "--duplicates" in bad.output


def test_no_two_people_share_a_valid_resident_id(
    made: tuple[list[dict[str, Any]], DuplicateMaker],
) -> None:
    patients, maker = made
    entity = {row[0]: row[1] for row in maker.truth}
    owner: dict[str, str] = {}
    for patient in patients:
        rid = _rid(patient)
        if rid and has_valid_check_digit(rid):
            assert owner.setdefault(rid, entity[patient["id"]]) == entity[patient["id"]], rid
