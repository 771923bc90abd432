"""``yilian views …`` and ``yilian sql``: conformance runs, view refresh, SQL over the views."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yilian.analytics.catalog import DERIVED, core_views
from yilian.analytics.conformance import CaseResult, report, run_file
from yilian.analytics.engines import DuckDBEngine, make_engine
from yilian.analytics.errors import AnalyticsError
from yilian.analytics.refresh import refresh as run_refresh

app = typer.Typer(help="SQL-on-FHIR v2 views: conformance, materialisation, SQL.")
console = Console()

EngineOpt = Annotated[str, typer.Option("--engine", help="duckdb (default) or spark")]


def _check_engine(name: str) -> None:
    if name not in ("duckdb", "spark"):
        raise typer.BadParameter(f"must be duckdb or spark, got {name!r}", param_hint="--engine")
    if name == "spark" and importlib.util.find_spec("pyspark") is None:
        raise typer.BadParameter(
            "the Spark engine needs pyspark, an optional dependency: `.venv/bin/pip install -e "
            "'.[spark]'` (scripts/setup installs it; the demo's setup does not)",
            param_hint="--engine",
        )


@app.command()
def conformance(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, readable=True)],
    engine: EngineOpt = "duckdb",
    report_file: Annotated[Path | None, typer.Option("--report", help="test report JSON")] = None,
) -> None:
    """Run every SQL-on-FHIR test file in DIRECTORY; the last line is `N passed, M failed`."""
    _check_engine(engine)
    eng = make_engine(engine)
    results: list[CaseResult] = []
    files = sorted(directory.glob("*.json"))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(f"conformance on {engine}", total=len(files))
        for path in files:
            progress.update(task, description=f"{engine}: {path.name}")
            try:
                results.extend(run_file(eng, path))
            except (ValueError, KeyError, AnalyticsError) as exc:
                console.print(f"[red]{path.name}: cannot run ({exc})[/red]")
            progress.advance(task)
    eng.close()
    for r in results:
        if not r.passed:
            console.print(f"[red]FAIL[/red] {r.file} · {r.name}: {r.reason}", markup=True)
    if report_file is not None:
        report_file.write_text(json.dumps(report(results), indent=2), encoding="utf-8")
    passed = sum(r.passed for r in results)
    typer.echo(f"{passed} passed, {len(results) - passed} failed")


@app.command("refresh")
def refresh_cmd(
    source: Annotated[Path, typer.Option("--source", exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option("--out", file_okay=False)],
    incremental: Annotated[
        bool, typer.Option("--incremental", help="only resources changed since last refresh")
    ] = False,
    deleted: Annotated[
        list[Path] | None,
        typer.Option(
            "--deleted",
            exists=True,
            dir_okay=False,
            help="Bulk Data 'deleted' NDJSON file (repeatable): drop these resources' rows",
        ),
    ] = None,
    engine: EngineOpt = "duckdb",
) -> None:
    """Materialise the core views from NDJSON files (one per resource type) to Parquet."""
    _check_engine(engine)
    eng = make_engine(engine)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("loading", total=len(core_views()) + len(DERIVED))

        def on_view(name: str) -> None:
            progress.update(task, description=f"view {name}")
            progress.advance(task)

        try:
            summary = run_refresh(
                eng, source, out, incremental=incremental, deleted=deleted or (), on_view=on_view
            )
        except (FileNotFoundError, ValueError, AnalyticsError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    table = Table(title=f"{summary.mode} refresh: {summary.resources} resources read")
    table.add_column("view")
    table.add_column("rows", justify="right")
    for name, n in summary.rows.items():
        table.add_row(name, str(n))
    console.print(table)
    console.print(f"watermark (max meta.lastUpdated): {summary.watermark}")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL (DuckDB dialect) over the views")],
    views: Annotated[Path, typer.Option("--views", exists=True, file_okay=False)] = Path("views"),
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
) -> None:
    """Run SQL over materialised views (every view and derived table, incremental parts merged)."""
    eng = DuckDBEngine()
    eng.attach_views(views)
    try:
        result = eng.query(query)
    except AnalyticsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    table = Table()
    for name in result.column_names:
        table.add_column(name)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*["" if v is None else str(v) for v in row.values()])
    console.print(table)
    console.print(f"{result.num_rows} rows")
