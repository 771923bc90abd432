"""Resident ID numbers (GB 11643) and organisation codes (GB 32100) of the generator."""

from __future__ import annotations

import datetime as dt
import random

from yilian.mpi.resident_id import parse_resident_id
from yilian.synth.identifiers import ResidentIdAllocator, _org_code, uscc, uscc_check_ok


def test_allocated_ids_are_valid_unique_and_encode_sex_and_birth() -> None:
    allocator = ResidentIdAllocator(random.Random(1))
    seen = set()
    for n in range(2000):
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=n % 7)
        sex = "male" if n % 3 else "female"
        value = allocator.allocate("310105", birth, sex)
        parsed = parse_resident_id(value)
        assert (parsed.birth_date, parsed.sex, parsed.region_code) == (birth, sex, "310105")
        seen.add(value)
    assert len(seen) == 2000


def test_uscc_check_characters_match_the_standard_example() -> None:
    # 91350100M000100Y43: the worked example commonly used to explain GB 32100-2015; its
    # organisation code M000100Y-4 carries the GB 11714 check character.
    assert uscc_check_ok("91350100M000100Y43")
    assert not uscc_check_ok("91350100M000100Y44")
    assert _org_code("M000100Y") == "M000100Y4"


def test_generated_uscc_pass_and_a_typo_fails() -> None:
    for serial in range(50):
        code = uscc("310105", serial)
        assert len(code) == 18 and code.startswith("12310105") and uscc_check_ok(code)
        broken = code[:10] + ("1" if code[10] != "1" else "2") + code[11:]
        assert not uscc_check_ok(broken)
