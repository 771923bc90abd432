"""The patient choice of bench/everything_at_scale.py: which patients are "a patient with 500
resources", what a typical compartment is (patients without members count), and its input checks.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from everything_at_scale import (  # noqa: E402  (bench/ is not a package)
    compartment_keys,
    first_calls,
    parse_band,
    pick_in_band,
    pick_near,
    rotate,
    size_at,
)


def test_band_parsed_and_bad_bands_rejected() -> None:
    assert parse_band("400-600") == (400, 600)
    for bad in ("400", "600-400", "a-b", "-5", "400-"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_band(bad)


def test_size_at_counts_patients_without_members_as_zero() -> None:
    sizes = {"a": 5, "b": 7, "c": 9}
    assert size_at(sizes, 3, 0.5) == 7
    assert size_at(sizes, 3, 1.0) == 9
    # seven more patients with no member at all: the median is 0, the maximum unchanged
    assert size_at(sizes, 10, 0.5) == 0
    assert size_at(sizes, 10, 0.8) == 5
    assert size_at(sizes, 10, 1.0) == 9
    with pytest.raises(ValueError):
        size_at(sizes, 2, 0.5)  # fewer patients than patients with members


def test_pick_in_band_samples_only_inside_the_band() -> None:
    sizes = {f"p{i}": i for i in range(1000)}
    chosen, note = pick_in_band(sizes, (400, 600), 20, random.Random(1))
    assert len(chosen) == 20
    assert all(400 <= sizes[p] <= 600 for p in chosen)
    assert note.startswith("201 patients have 400-600 members")


def test_pick_in_band_falls_back_to_the_largest_and_says_so() -> None:
    sizes = {"a": 90, "b": 310, "c": 120, "d": 310}
    chosen, note = pick_in_band(sizes, (400, 600), 3, random.Random(1))
    assert chosen == ["b", "d", "c"]
    assert "no patient has 400-600 members" in note
    assert "120-310" in note


def test_pick_near_takes_the_nearest_sizes_first() -> None:
    sizes = {"a": 10, "b": 11, "c": 12, "d": 9, "e": 40}
    assert pick_near(sizes, 11, 1, random.Random(1)) == ["b"]
    assert set(pick_near(sizes, 11, 3, random.Random(1))) == {"a", "b", "c"}
    assert "e" not in pick_near(sizes, 11, 4, random.Random(1))
    assert len(pick_near(sizes, 11, 10, random.Random(1))) == 5


def test_rotate_cycles_and_refuses_nothing() -> None:
    assert rotate(["x", "y"], 5) == ["x", "y", "x", "y", "x"]
    with pytest.raises(ValueError):
        rotate([], 3)


def test_compartment_keys_leave_audit_events_out() -> None:
    keys = compartment_keys()
    assert ("Observation", "subject") in keys
    assert ("Encounter", "patient") in keys
    assert all(res_type != "AuditEvent" for res_type, _ in keys)


def test_first_calls_skip_the_warmed_up_values() -> None:
    paths = ["a", "b", "c", "a", "b", "c"]
    assert first_calls(paths, 2) == [False, False, True, False, False, False]
    assert first_calls(paths, 0) == [True, True, True, False, False, False]
