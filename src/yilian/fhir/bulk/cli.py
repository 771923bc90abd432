"""``yilian load`` and ``yilian export``: bulk data from the command line, with progress.

The lead registers ``load`` and ``export`` as top-level commands of ``yilian.cli.app``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yilian.config import load_settings
from yilian.db import make_engine
from yilian.fhir.bulk.export import ExportRequest, run_export
from yilian.fhir.bulk.importer import LoadAborted, Loader, LoadOptions, LoadReport
from yilian.fhir.errors import FhirError
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.schema import upgrade_to_head

SHOWN_ERRORS = 20


def _runtime(validate: bool = True) -> Runtime:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    base = (settings.base_url or "http://localhost:8000").rstrip("/") + "/fhir"
    runtime = Runtime(engine, base, validate=validate)
    # Transaction/batch Bundles are written through the store: the booking rule applies to
    # their Appointments (NDJSON lines never hold a Slot: prepare.py refuses those).
    from yilian.referral.booking import install

    install(runtime)
    return runtime


def load(
    paths: list[Path] = typer.Argument(
        ..., help="NDJSON (.ndjson, .ndjson.gz) or Bundle JSON files, or directories of them."
    ),
    batch_size: int = typer.Option(1000, min=1, help="Resources per transaction."),
    workers: int = typer.Option(2, min=0, help="Validation processes (0: in this process)."),
    strict: bool = typer.Option(False, help="Stop at the first rejected line."),
    validate: bool = typer.Option(True, help="Validate every resource (R4 + yilian rules)."),
    restart: bool = typer.Option(False, help="Ignore recorded progress; load everything again."),
) -> None:
    """Bulk-load FHIR resources; re-running the same command resumes where it stopped."""
    console = Console(stderr=True)
    runtime = _runtime(validate)
    options = LoadOptions(
        batch_size=batch_size, workers=workers, validate=validate, strict=strict, restart=restart
    )
    started = time.monotonic()
    columns = (
        TextColumn("[bold]loading"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[resources]:,} resources"),
        TextColumn("{task.fields[rate]:,.0f}/s"),
        TextColumn("[red]{task.fields[rejected]} rejected"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("load", total=None, resources=0, rate=0.0, rejected=0)

        def show(report: LoadReport) -> None:
            elapsed = max(time.monotonic() - started, 1e-6)
            progress.update(
                task,
                total=report.bytes_total,
                completed=report.bytes_done,
                resources=report.loaded,
                rate=report.loaded / elapsed,
                rejected=report.rejected,
            )

        loader = Loader(runtime, RequestContext.system(), options, on_progress=show)
        try:
            report = loader.load(paths)
        except LoadAborted as exc:
            summary(console, loader.report, time.monotonic() - started)
            console.print(f"[red]stopped:[/red] {exc}")
            raise typer.Exit(1) from exc
        except FileNotFoundError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    summary(console, report, time.monotonic() - started)


def summary(console: Console, report: LoadReport, seconds: float) -> None:
    """Loaded per type, rejected with file:line and reason (the first few), files skipped."""
    table = Table(title="loaded", show_footer=True)
    table.add_column("type", footer="total")
    table.add_column("resources", justify="right", footer=f"{report.loaded:,}")
    for res_type, count in sorted(report.by_type.items()):
        table.add_row(res_type, f"{count:,}")
    console.print(table)
    rate = report.loaded / seconds if seconds > 0 else 0.0
    console.print(
        f"{report.loaded:,} loaded ({report.updated:,} as new versions), "
        f"{report.rejected:,} rejected, {report.files} files "
        f"({len(report.skipped_files)} already loaded), {seconds:.1f} s, {rate:,.0f}/s"
    )
    for error in report.errors[:SHOWN_ERRORS]:
        console.print(f"[red]rejected[/red] {error}", markup=True, highlight=False)
    if len(report.errors) > SHOWN_ERRORS:
        console.print(f"… and {len(report.errors) - SHOWN_ERRORS} more rejected")


def export(
    out: Path = typer.Argument(..., help="Directory for the <Type>.ndjson files."),
    types: str = typer.Option("", "--type", help="Comma-separated resource types (default all)."),
    since: str = typer.Option("", help="Only resources changed after this instant (…Z)."),
    patient: str = typer.Option("", help="Only this patient's compartment (Patient id)."),
    patients: bool = typer.Option(False, help="Only the Patient compartments of all patients."),
) -> None:
    """Export current resources as NDJSON, one file per type (FHIR Bulk Data layout)."""
    from yilian.fhir.bulk.api import parse_instant

    console = Console(stderr=True)
    level = "instance" if patient else "patient" if patients else "system"
    try:
        moment = parse_instant(since) if since else None
    except FhirError as exc:
        console.print(f"[red]--since: {exc}[/red]")
        raise typer.Exit(2) from exc
    request = ExportRequest(
        level, tuple(t.strip() for t in types.split(",") if t.strip()), moment, patient or None
    )
    until = datetime.now(UTC).replace(tzinfo=None)
    with Progress(
        TextColumn("[bold]exporting {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("", total=None)

        def before(res_type: str, position: int, total: int) -> None:
            progress.update(task, description=res_type, completed=position, total=total)

        files = run_export(_runtime(), request, out, until, before_type=before)
    table = Table(title=f"exported to {out}")
    table.add_column("type")
    table.add_column("resources", justify="right")
    for item in files:
        table.add_row(item.res_type, f"{item.count:,}")
    console.print(table)
