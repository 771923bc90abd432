"""``yilian mpi review …``: fill the steward's queue from a batch run, and list it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from yilian.fhir.runtime import RequestContext, Runtime

app = typer.Typer(no_args_is_help=True, help="The data steward's review queue.")


def _runtime() -> Runtime:
    from yilian.config import load_settings
    from yilian.db import make_engine
    from yilian.schema import upgrade_to_head

    settings = load_settings()
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    return Runtime(engine, (settings.base_url or "http://localhost:8000") + "/fhir")


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="mpi-review.csv written by `yilian mpi dedupe`."),
    report: Path | None = typer.Option(
        None, help="The run's mpi-report.json (default: beside FILE)."
    ),
) -> None:
    """Propose the CSV's pairs for review (idempotent: a pair already queued is refreshed, a
    decided pair keeps its decision). The Patients must be loaded (`yilian load`)."""
    from yilian.mpi.review.importer import ReviewImportError, import_review_csv

    if not file.is_file():
        typer.echo(f"error: FILE {file} does not exist [rule: review-csv-file]", err=True)
        raise typer.Exit(2)
    runtime = _runtime()
    try:
        with runtime.transaction(RequestContext.system()) as service:
            result = import_review_csv(service.store, file, report)
    except ReviewImportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"review queue: {result.proposed} open pair(s) proposed, {result.decided} already "
        f"decided, {result.missing} skipped (a Patient not in the store)"
    )


@app.command("list")
def list_queue(
    status: str = typer.Option("open", help="open | linked | not-linked | merged"),
    limit: int = typer.Option(20, min=1, max=1000),
) -> None:
    """The queue, most likely pairs first."""
    from yilian.mpi.review.queue import ReviewError, count_items, list_items

    runtime = _runtime()
    with runtime.sessions() as session:
        try:
            items = list_items(session, status=status, limit=limit)
        except ReviewError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        total = count_items(session, status=status)
    table = Table(title=f"review queue: {total} {status}")
    for column in ("id", "patient a", "patient b", "probability", "source", "created"):
        table.add_column(column)
    for item in items:
        table.add_row(
            str(item.id), item.patient_a, item.patient_b, f"{item.probability:.3f}",
            item.source, item.created.strftime("%Y-%m-%d %H:%M"),
        )  # fmt: skip
    Console().print(table)
