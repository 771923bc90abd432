"""The model for Chinese residents: name (characters, pinyin, variants), sex, birth date, phone,
Shanghai address, resident ID, medical insurance card and hospital MRN (issue #6).

Input columns (strings, None when unknown): ``name`` (full name in characters), ``sex`` (FHIR
gender code), ``birth_date`` (YYYY-MM-DD), ``phone``, ``address`` (one line), ``resident_id``
(18 or legacy 15 characters), ``insurance_card``, ``mrn`` (``system|value``).

An identical resident ID that passes its GB 11643 check is certain (issue #6: "an exact match on a
valid resident ID number is certain"); a failed check is a typo, so such a number is still compared
by edit distance but never decides alone.
"""

from __future__ import annotations

import numpy as np

from yilian.mpi.address import parse_address
from yilian.mpi.blocking import BlockingRule
from yilian.mpi.chinese_names import name_pinyin, normalise_characters, split_name
from yilian.mpi.comparisons import (
    Comparison,
    Levels,
    birth_date,
    edit_distance,
    exact,
    phone,
    similarity,
)
from yilian.mpi.model import BoolArray, ModelSpec
from yilian.mpi.records import IntArray, ObjArray, Records, object_array
from yilian.mpi.resident_id import has_valid_check_digit, upgrade_legacy

COLUMNS = (
    "name",
    "sex",
    "birth_date",
    "phone",
    "address",
    "resident_id",
    "insurance_card",
    "mrn",
)


def _map(values: ObjArray, fn: object) -> ObjArray:
    assert callable(fn)
    return object_array(fn(v) if v is not None else None for v in values)


def normalise_resident_id(value: str) -> str | None:
    """Upper-case X; a legacy 15-digit number upgraded to 18 (china-rules.md §6)."""
    value = value.strip().upper()
    if len(value) == 15 and value.isascii() and value.isdigit():
        return upgrade_legacy(value)
    return value or None


def prepare(records: Records) -> None:
    """Derived columns: name parts and pinyin, address parts, normalised ID, blocking keys."""
    if "name:chars" in records.columns:
        return
    chars = _map(records.column("name"), normalise_characters)
    records.add("name:chars", chars)
    records.add("surname:chars", _map(chars, lambda n: split_name(n)[0]))
    records.add("given:chars", _map(chars, lambda n: split_name(n)[1] or None))
    raw = _map(records.column("name"), lambda n: n.replace(" ", "").replace("\u3000", ""))
    records.add("surname:raw", _map(raw, lambda n: split_name(n)[0]))
    records.add("given:raw", _map(raw, lambda n: split_name(n)[1] or None))
    full_py = _map(chars, name_pinyin)
    records.add("name:pinyin", full_py)
    surname_len = [len(split_name(n)[0]) if n else 0 for n in chars]
    records.add(
        "surname:pinyin",
        object_array(
            " ".join(p.split(" ")[:k]) if p else None
            for p, k in zip(full_py, surname_len, strict=True)
        ),
    )
    records.add(
        "given:pinyin",
        object_array(
            " ".join(p.split(" ")[k:]) or None if p else None
            for p, k in zip(full_py, surname_len, strict=True)
        ),
    )
    parsed = [parse_address(a) if a else None for a in records.column("address")]
    for key, parts in (
        ("address:number", ("road", "lane", "number")),
        ("address:road", ("road",)),
        ("address:subdistrict", ("subdistrict",)),
        ("address:district", ("district",)),
    ):
        records.add(key, object_array(p.key(*parts) if p else None for p in parsed))
    rid = _map(records.column("resident_id"), normalise_resident_id)
    records.add("resident_id:norm", rid)
    records.add(
        "resident_id:valid",
        object_array(v if v is not None and has_valid_check_digit(v) else None for v in rid),
    )
    records.add("birth:year", _map(records.column("birth_date"), lambda d: d[:4]))
    records.add("birth:monthday", _map(records.column("birth_date"), lambda d: d[-5:]))
    records.add("phone:last8", _map(records.column("phone"), lambda p: p[-8:]))


def name_comparison(part: str, *, tf: bool) -> Comparison:
    """Exact characters; same after variant normalisation or same pinyin (homophone); pinyin
    close (Jaro-Winkler >= 0.9: one syllable or letter off); different."""
    chars, py = f"{part}:chars", f"{part}:pinyin"

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        raw = records.codes(f"{part}:raw")
        c, p = records.codes(chars), records.codes(py)
        missing = (c[i] < 0) | (c[j] < 0)
        same_raw = raw[i] == raw[j]
        homophone = (c[i] == c[j]) | ((p[i] >= 0) & (p[i] == p[j]))
        sim = np.zeros(len(i))
        todo = np.flatnonzero(~missing & ~homophone & (p[i] >= 0) & (p[j] >= 0))
        sim[todo] = similarity(records.column(py), i[todo], j[todo], "jaro_winkler")
        out = np.full(len(i), 4, dtype=np.int8)
        out[sim >= 0.9] = 3
        out[homophone] = 2
        out[same_raw] = 1
        out[missing] = 0
        return out

    labels = ("same characters", "same pinyin or variant character", "pinyin close", "different")
    return Comparison(part, labels, compute, chars if tf else None)


def address_comparison() -> Comparison:
    """Same road, lane and number; same road; same subdistrict; same district; different."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        keys = [
            records.codes(k)
            for k in ("address:number", "address:road", "address:subdistrict", "address:district")
        ]
        raw = records.codes("address")
        missing = (raw[i] < 0) | (raw[j] < 0)
        out = np.full(len(i), 5, dtype=np.int8)
        for level in range(4, 0, -1):
            k = keys[level - 1]
            out[(k[i] >= 0) & (k[i] == k[j])] = level
        out[missing] = 0
        return out

    labels = (
        "same road, lane and number",
        "same road",
        "same subdistrict",
        "same district",
        "different",
    )
    return Comparison("address", labels, compute)


def resident_id_comparison() -> Comparison:
    """Exact; one edit (a typo: GB 11643's check catches every single substitution and adjacent
    transposition, identity-and-analytics.md); different with one number failing its check;
    two different numbers that both pass their check (different people: a typo that keeps the
    check valid needs two substitutions and happens about 1 time in 11 of those)."""

    def compute(records: Records, i: IntArray, j: IntArray) -> Levels:
        codes, valid = records.codes("resident_id:norm"), records.codes("resident_id:valid")
        missing = (codes[i] < 0) | (codes[j] < 0)
        same = codes[i] == codes[j]
        dist = np.full(len(i), 1e9)
        todo = np.flatnonzero(~missing & ~same)
        dist[todo] = similarity(records.column("resident_id:norm"), i[todo], j[todo], "damerau")
        both_valid = (valid[i] >= 0) & (valid[j] >= 0)
        out = np.full(len(i), 3, dtype=np.int8)
        out[both_valid] = 4
        out[dist <= 1] = 2
        out[same] = 1
        out[missing] = 0
        return out

    labels = (
        "exact",
        "1 edit or transposition",
        "different, one fails its check",
        "different valid numbers",
    )
    return Comparison("resident_id", labels, compute)


def _certain(records: Records, i: IntArray, j: IntArray) -> BoolArray:
    valid = records.codes("resident_id:valid")
    same: BoolArray = (valid[i] >= 0) & (valid[i] == valid[j])
    return same


def chinese_spec() -> ModelSpec:
    comparisons = (
        name_comparison("surname", tf=True),
        name_comparison("given", tf=True),
        exact("sex", "sex"),
        birth_date("birth_date", "birth_date"),
        phone("phone", "phone"),
        address_comparison(),
        resident_id_comparison(),
        edit_distance("insurance_card", "insurance_card", (1,)),
        exact("mrn", "mrn"),
    )
    blocking = (
        BlockingRule("resident ID", ("resident_id:norm",)),
        BlockingRule("phone last 8", ("phone:last8",)),
        BlockingRule("name pinyin + birth year", ("name:pinyin", "birth:year")),
        BlockingRule("surname pinyin + birth date", ("surname:pinyin", "birth_date")),
        BlockingRule("given pinyin + birth date", ("given:pinyin", "birth_date")),
        BlockingRule("name pinyin + address", ("name:pinyin", "address:number")),
        # a year off by one and a changed phone, without an ID, escape the rules above
        BlockingRule("name pinyin + birthday", ("name:pinyin", "birth:monthday")),
        BlockingRule("name pinyin + road", ("name:pinyin", "address:road")),
        BlockingRule("insurance card", ("insurance_card",)),
        BlockingRule("hospital MRN", ("mrn",)),
    )
    return ModelSpec(
        "chinese-residents",
        comparisons,
        blocking,
        prepare=prepare,
        certain=_certain,
        # Twins and siblings agree on everything a household shares; their given names, birth
        # dates and ID numbers are what differ (docs/mpi.md "How a pair is scored", step 4).
        review_at_most=(("given", 4), ("birth_date", 5), ("resident_id", 4)),
        # A different given name AND a different birth date in one household is a sibling or a
        # parent, not a mistyped registration (typos leave one of the two close): kept apart
        # instead of filling the steward's queue with families.
        separate_when_all=(("given", 4), ("birth_date", 5)),
    )
