"""``yilian mpi``: the patient matcher on benchmark data (issue #6 command-line contract)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yilian.mpi import store_cli
from yilian.mpi.chinese import chinese_spec
from yilian.mpi.dedupe import run_dedupe
from yilian.mpi.district import district_quality, load_district
from yilian.mpi.evaluate import pair_quality
from yilian.mpi.febrl import DataError, Dataset, febrl_spec, load_febrl3, load_febrl4, load_file
from yilian.mpi.model import LINK_THRESHOLD, LOWER_THRESHOLD, UPPER_THRESHOLD, Matcher
from yilian.mpi.parameters import parameters_json, parameters_markdown
from yilian.mpi.review.cli import app as review_app

app = typer.Typer(no_args_is_help=True, help="Master patient index: match and link residents.")
app.add_typer(review_app, name="review", help="The data steward's review queue.")


def _load(dataset: str, entity_column: str) -> Dataset:
    if dataset == "febrl3":
        return load_febrl3()
    if dataset == "febrl4":
        return load_febrl4()
    path = Path(dataset)
    if not path.is_file():
        raise DataError(
            f"DATASET must be febrl3, febrl4 or an existing CSV file; {dataset!r} is neither"
        )
    return load_file(path, entity_column)


@app.command()
def benchmark(
    dataset: str = typer.Argument(..., metavar="febrl3|febrl4|FILE|DIR"),
    entity_column: str = typer.Option(
        "entity_id", help="FILE only: the column holding the true entity of each record."
    ),
    threshold: float = typer.Option(
        LINK_THRESHOLD, min=0.0, max=1.0, help="Link pairs whose match probability reaches this."
    ),
    parameters: Path | None = typer.Option(
        None, help="Also write the estimated parameters (.json or .md) to this file."
    ),
) -> None:
    """Train on the data set (EM, no labels), link, and score against the true entities.

    Prints precision, recall, F1 and wall time (loading, training and linking); the last line is
    ``f1=<value>``. FILE is a CSV with the FEBRL columns and a true-entity column; it is
    deduplicated, or linked when a ``source`` column (0/1) says which side each record is on.
    DIR is the output of ``yilian synth --duplicates``: its Patients are matched with the
    Chinese model and scored against mpi-truth.csv, with false links among family members and
    the review-queue share.
    """
    if Path(dataset).is_dir():
        _benchmark_district(Path(dataset), threshold, parameters)
        return
    started = time.perf_counter()
    try:
        data = _load(dataset, entity_column)
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    matcher = Matcher(febrl_spec())
    report = matcher.train(data.records)
    scored = matcher.predict(data.records)
    links = scored.links(threshold)
    elapsed = time.perf_counter() - started
    quality = pair_quality(data.records, data.entity, scored.i[links], scored.j[links])
    mode = "link" if data.records.is_link else "dedupe"
    typer.echo(f"data set: {data.name} ({mode}, {len(data.records)} records)")
    typer.echo(
        f"candidate pairs: {report.candidate_pairs}, EM iterations: {report.iterations}, "
        f"threshold: match probability >= {threshold:g}"
    )
    typer.echo(
        f"true pairs: {quality.true_pairs}, predicted: {quality.predicted_pairs}, "
        f"correct: {quality.true_positives}"
    )
    typer.echo(f"precision={quality.precision:.4f}")
    typer.echo(f"recall={quality.recall:.4f}")
    typer.echo(f"wall_time_s={elapsed:.2f}")
    _write_parameters(matcher, parameters)
    typer.echo(f"f1={quality.f1:.4f}")


def _write_parameters(matcher: Matcher, path: Path | None) -> None:
    if path is None or matcher.parameters is None:
        return
    text = (
        parameters_markdown(matcher.spec, matcher.parameters)
        if path.suffix == ".md"
        else parameters_json(matcher.spec, matcher.parameters)
    )
    path.write_text(text, encoding="utf-8")
    typer.echo(f"parameters: {path}")


def _benchmark_district(directory: Path, threshold: float, parameters: Path | None) -> None:
    """The synthetic district with duplicates: the Chinese model, plus hard-negative figures."""
    started = time.perf_counter()
    try:
        district = load_district(directory)
    except DataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    loaded = time.perf_counter()
    matcher = Matcher(chinese_spec())
    report = matcher.train(district.records)
    scored = matcher.predict(district.records)
    elapsed = time.perf_counter() - started
    result = district_quality(district, scored, threshold)
    quality = result.quality
    typer.echo(f"data set: {directory} (dedupe, {len(district.records)} Patient records)")
    typer.echo(
        f"candidate pairs: {report.candidate_pairs}, EM iterations: {report.iterations}, "
        f"threshold: match probability >= {threshold:g}"
    )
    typer.echo(
        f"true pairs: {quality.true_pairs}, predicted: {quality.predicted_pairs}, "
        f"correct: {quality.true_positives}"
    )
    typer.echo(
        f"family/twin pairs: {result.family_pairs}, falsely linked: {result.family_false_links} "
        f"(rate {result.family_false_link_rate:.5f})"
    )
    typer.echo(
        f"review band {LOWER_THRESHOLD:g} <= p < {UPPER_THRESHOLD:g}: {result.review_pairs} pairs, "
        f"{result.review_records} records ({result.review_records / len(district.records):.2%})"
    )
    typer.echo(f"precision={quality.precision:.4f}")
    typer.echo(f"recall={quality.recall:.4f}")
    typer.echo(f"wall_time_s={elapsed:.2f} (loading {loaded - started:.2f})")
    _write_parameters(matcher, parameters)
    typer.echo(f"f1={quality.f1:.4f}")


@app.command()
def dedupe(
    source: Path = typer.Argument(..., help="Directory with Patient.ndjson[.gz]."),
    out: Path = typer.Option(..., "--out", help="Directory for the links, review queue, report."),
) -> None:
    """Deduplicate every Patient: link clusters to a golden record (Patient.link), queue the rest.

    Writes OUT/Patient.ndjson (clustered Patients with links; apply with `yilian load OUT`),
    OUT/mpi-review.csv (pairs for a steward) and OUT/mpi-report.json.
    """
    if not source.is_dir():
        typer.echo(f"error: SOURCE must be a directory with Patient.ndjson, got {source}", err=True)
        raise typer.Exit(2)
    stages = ["read Patients (DuckDB)", "estimate parameters (EM)", "block and score"]
    stages.append("cluster and write")
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True),
    ) as progress:  # fmt: skip
        task = progress.add_task("dedupe", total=len(stages))

        def step(name: str) -> None:
            progress.update(task, description=name, completed=stages.index(name))

        try:
            report = run_dedupe(source, out, step)
        except DataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        progress.update(task, description="done", completed=len(stages))
    table = Table(title=f"yilian mpi dedupe {source}")
    table.add_column("")
    table.add_column("", justify="right")
    for label, value in (
        ("Patient records", report.records),
        ("candidate pairs", report.candidate_pairs),
        (f"automatic links (p >= {UPPER_THRESHOLD:g})", report.auto_links),
        (f"review queue ({LOWER_THRESHOLD:g} <= p < {UPPER_THRESHOLD:g})", report.review_pairs),
        ("clusters (persons with > 1 record)", report.clusters),
        ("records in clusters", report.records_in_clusters),
    ):
        table.add_row(label, f"{value:,}")
    for stage, seconds in report.seconds.items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    Console().print(table)
    typer.echo(f"links: {out / 'Patient.ndjson'}  review: {out / 'mpi-review.csv'}")


app.command()(store_cli.train)
app.command()(store_cli.index)
