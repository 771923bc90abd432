"""The shipped views over a small synthetic district, on DuckDB and on Spark.

Every expectation is computed in Python from the same resources the generator wrote (the
synthetic district is the shape yilian's modules read), so a view that drops or mis-reads a
field fails here on both engines.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from yilian.analytics import catalog
from yilian.analytics.catalog import DERIVED, SYSTEM_CONSTANTS, CatalogError, core_views
from yilian.analytics.engines import DuckDBEngine, Engine, SparkEngine
from yilian.analytics.refresh import refresh
from yilian.analytics.viewdef import validate_view
from yilian.fhir import systems
from yilian.synth.generator import DistrictGenerator, SynthConfig
from yilian.synth.writer import NdjsonWriter

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Resource]]]:
    """≈ 280 residents (seed 3) as a Bulk Data export, plus the resources by type."""
    folder = tmp_path_factory.mktemp("district")
    config = SynthConfig(scale=0.0004, seed=3, end_date=dt.date(2026, 10, 31))
    by_type: dict[str, list[Resource]] = {}
    with NdjsonWriter(folder) as writer:
        for resource in DistrictGenerator(config).resources():
            writer.write(resource)
            by_type.setdefault(resource["resourceType"], []).append(resource)
    return folder, by_type


# A full refresh on Spark local mode takes over ten minutes on the 2-core CI machine (hundreds of
# small Spark jobs); it runs with the slow tests (`pytest -m slow`). Spark conformance stays in CI.
SPARK = pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])


@pytest.fixture(scope="module", params=["duckdb", SPARK])
def views(
    request: pytest.FixtureRequest,
    district: tuple[Path, dict[str, list[Resource]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, dict[str, Resource]]]:
    """One full refresh per engine; every view's rows keyed by id (one row per id expected)."""
    engine: Engine = (
        DuckDBEngine()
        if request.param == "duckdb"
        else SparkEngine(request.getfixturevalue("spark_session"))
    )
    out_dir = tmp_path_factory.mktemp(f"views-{request.param}")
    summary = refresh(engine, district[0], out_dir)
    engine.close()
    out: dict[str, dict[str, Resource]] = {}
    for name in summary.rows:
        rows = pq.read_table(out_dir / f"{name}.parquet").to_pylist()
        if name in ("conditions", "observations"):
            continue  # one row per coding, checked below by count
        out[name] = {r["id"]: r for r in rows}
        assert len(out[name]) == len(rows), f"{name}: duplicate ids"
    yield out


@pytest.fixture(params=["duckdb", SPARK])
def refresh_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine: Engine = (
        DuckDBEngine()
        if request.param == "duckdb"
        else SparkEngine(request.getfixturevalue("spark_session"))
    )
    yield engine
    engine.close()


def _ref(value: dict[str, Any] | None) -> str | None:
    return None if value is None else str(value["reference"])


def _role(team: Resource, role: str) -> str | None:
    for p in team["participant"]:
        if any(c["code"] == role for r in p["role"] for c in r["coding"]):
            return _ref(p["member"])
    return None


def test_every_view_and_derived_table_is_written(
    views: dict[str, dict[str, Resource]], district: tuple[Path, dict[str, list[Resource]]]
) -> None:
    _, by_type = district
    assert set(views) == {n for n in core_views() if n not in ("conditions", "observations")} | {
        d.name for d in DERIVED
    }
    assert len(views["patients"]) == len(by_type["Patient"])
    assert len(views["encounters"]) == len(by_type["Encounter"])
    assert len(views["organizations"]) == len(by_type["Organization"])


def test_patients_resident_id_and_subdistrict(
    views: dict[str, dict[str, Resource]], district: tuple[Path, dict[str, list[Resource]]]
) -> None:
    for patient in district[1]["Patient"]:
        row = views["patients"][patient["id"]]
        (ident,) = [i for i in patient["identifier"] if i["system"] == systems.RESIDENT_ID]
        assert row["resident_id"] == ident["value"]
        (ext,) = [
            e for e in patient["address"][0]["extension"] if e["url"] == systems.EXT_SUBDISTRICT
        ]
        assert row["subdistrict"] == ext["valueCoding"]["code"]
        assert row["subdistrict_name"] == ext["valueCoding"]["display"]
        assert row["managing_org"] == _ref(patient["managingOrganization"])


def test_contracts_carry_the_1_plus_1_plus_1_choice(
    views: dict[str, dict[str, Resource]], district: tuple[Path, dict[str, list[Resource]]]
) -> None:
    teams = {t["id"]: t for t in district[1]["CareTeam"]}
    episodes = district[1]["EpisodeOfCare"]
    assert episodes and len(views["contracts"]) == len(episodes)
    for episode in episodes:
        row = views["contracts"][episode["id"]]
        team = teams[episode["team"][0]["reference"].split("/")[1]]
        assert row["patient"] == _ref(episode["patient"])
        assert row["status"] == episode["status"]
        assert row["period_start"] == episode["period"]["start"]
        assert row["chc"] == _ref(episode["managingOrganization"])
        assert row["family_doctor"] == _ref(episode["careManager"]) == _role(team, "family-doctor")
        assert row["district_hospital"] == _role(team, "district-hospital")
        assert row["municipal_hospital"] == _role(team, "municipal-hospital")
        assert row["care_team"] == team["id"]
    # The choices vary across the district (not one constant hospital).
    assert len({r["district_hospital"] for r in views["contracts"].values()}) > 1


def test_referrals_carry_their_task_state(
    views: dict[str, dict[str, Resource]], district: tuple[Path, dict[str, list[Resource]]]
) -> None:
    tasks = {t["focus"]["reference"]: t for t in district[1]["Task"]}
    requests = district[1]["ServiceRequest"]
    assert requests and len(views["referrals"]) == len(requests)
    for request in requests:
        row = views["referrals"][request["id"]]
        task = tasks[f"ServiceRequest/{request['id']}"]
        assert row["patient"] == _ref(request["subject"])
        assert row["code_text"] == request["code"]["text"]
        assert row["priority"] == request["priority"]
        assert row["performer"] == _ref(request["performer"][0])
        assert (row["task_id"], row["task_status"]) == (task["id"], task["status"])
        assert row["task_owner"] == _ref(task["owner"])


def test_organizations_tier(
    views: dict[str, dict[str, Resource]], district: tuple[Path, dict[str, list[Resource]]]
) -> None:
    for org in district[1]["Organization"]:
        tiers = [
            c["code"]
            for t in org.get("type", [])
            for c in t["coding"]
            if c["system"] == systems.ORGANIZATION_TIER
        ]
        row = views["organizations"][org["id"]]
        assert row["tier"] == (tiers[0] if tiers else None)
        assert row["part_of"] == _ref(org.get("partOf"))
    assert views["organizations"]["tongren"]["tier"] == "district-regional"


def test_referral_without_task_and_non_referral_request(
    refresh_engine: Engine, tmp_path: Path
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    referral = {"coding": [{"system": systems.SNOMED_CT, "code": "3457005"}]}
    requests = [
        {"resourceType": "ServiceRequest", "id": "r1", "status": "active", "intent": "order",
         "category": [referral], "subject": {"reference": "Patient/a"}},
        {"resourceType": "ServiceRequest", "id": "lab", "status": "active", "intent": "order",
         "category": [{"coding": [{"system": systems.SNOMED_CT, "code": "108252007"}]}],
         "subject": {"reference": "Patient/a"}},
    ]  # fmt: skip
    tasks = [
        {"resourceType": "Task", "id": f"t{i}", "status": s, "intent": "order",
         "lastModified": f"2026-0{i}-01", "focus": {"reference": "ServiceRequest/r1"}}
        for i, s in ((1, "requested"), (2, "accepted"))
    ]  # fmt: skip
    (src / "ServiceRequest.ndjson").write_text("\n".join(map(json.dumps, requests)) + "\n")
    (src / "Task.ndjson").write_text("\n".join(map(json.dumps, tasks)) + "\n")
    refresh(refresh_engine, src, out)
    rows = pq.read_table(out / "referrals.parquet").to_pylist()
    # The lab order is not a referral; the newest Task holds the state.
    assert [(r["id"], r["task_id"], r["task_status"]) for r in rows] == [("r1", "t2", "accepted")]
    assert pq.read_table(out / "contracts.parquet").num_rows == 0


def test_view_constants_are_the_project_constants() -> None:
    used: set[str] = set()
    for view in core_views().values():
        validate_view(view)
        for constant in view.get("constant", []):
            name = constant["name"]
            value = next(v for k, v in constant.items() if k.startswith("value"))
            if name.endswith(("_system", "_ext")) or name == "snomed":
                assert SYSTEM_CONSTANTS.get(name) == value, name
                used.add(name)
    assert used == set(SYSTEM_CONSTANTS)
    assert SYSTEM_CONSTANTS["resident_id_system"] == systems.RESIDENT_ID


def test_a_drifted_constant_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(catalog.SYSTEM_CONSTANTS, "resident_id_system", "urn:oid:2.16.156")
    with pytest.raises(CatalogError, match="resident_id_system"):
        core_views()
