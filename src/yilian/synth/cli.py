"""``yilian synth``: write the synthetic district as NDJSON, one file per resource type.

The lead mounts it with ``app.command("synth")(yilian.synth.cli.synth)``; then
``yilian load DIR`` loads the directory through the bulk loader (docs/bulk.md).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from yilian.synth.duplicates import DuplicateMaker, hospitals
from yilian.synth.generator import DistrictGenerator, SynthConfig
from yilian.synth.writer import NdjsonWriter


def _end_date(text: str) -> dt.date:
    if text == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"--end-date must be YYYY-MM-DD or 'today', got {text!r}"
        ) from None


def synth(
    out: Path = typer.Option(Path("synth-out"), "--out", help="Directory for the NDJSON files."),
    scale: float = typer.Option(
        0.01, min=0.0001, max=10.0, help="Share of Changning's 693,051 residents (1.0 = all)."
    ),
    years: int = typer.Option(3, min=1, max=30, help="Years of records before the end date."),
    seed: int = typer.Option(1, help="Random seed: same seed and options, same bytes."),
    end_date: str = typer.Option(
        "2026-10-31", help="Last day of the records (YYYY-MM-DD, or 'today' for a live demo)."
    ),
    visits: float = typer.Option(1.0, min=0.0, help="Multiplier on visit and admission rates."),
    gzip: bool = typer.Option(False, "--gzip", help="Write .ndjson.gz (the loader reads both)."),
    duplicates: float = typer.Option(
        0.0,
        min=0.0,
        max=1.0,
        help="Share of residents registered again at a hospital, with typos, plus twins; "
        "writes mpi-truth.csv (docs/synth.md 'Duplicates').",
    ),
) -> None:
    """Generate a synthetic Changning district (FHIR R4 NDJSON); then run `yilian load DIR`."""
    console = Console(stderr=True)
    try:
        config = SynthConfig(scale, years, seed, _end_date(end_date), visits)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    generator = DistrictGenerator(config)
    maker = (
        DuplicateMaker(duplicates, seed, hospitals(generator.network), config.end_date)
        if duplicates > 0
        else None
    )
    started = time.monotonic()
    columns = (
        TextColumn("[bold]generating residents"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with (
        NdjsonWriter(out, compress=gzip) as writer,
        Progress(*columns, console=console, transient=False) as progress,
    ):
        task = progress.add_task("residents", total=generator.residents)
        stream = generator.resources(lambda n: progress.advance(task, n))
        writer.write_all(maker.process(stream) if maker else stream)
    if maker:
        console.print(f"ground truth for patient matching: {maker.write_truth(out)}")
    elapsed = max(time.monotonic() - started, 1e-9)
    _write_demo_users(out, console)
    table = Table(title=f"Changning district, scale {scale}, seed {seed}, ending {config.end_date}")
    table.add_column("resource type")
    table.add_column("count", justify="right")
    for resource_type, count in sorted(writer.counts.items()):
        table.add_row(resource_type, f"{count:,}")
    total = sum(writer.counts.values())
    table.add_row("[bold]total", f"[bold]{total:,}")
    console.print(table)
    console.print(
        f"{generator.residents:,} residents, {total:,} resources in {elapsed:.1f} s "
        f"({total / elapsed:,.0f} resources/s) -> {out}\nnext: yilian load {out}",
        soft_wrap=True,
    )


def _write_demo_users(out: Path, console: Console) -> None:
    """One demo user per role, linked to this district's records (``yilian users demo DIR``
    creates them after ``yilian load DIR``; docs/authorization.md "Demo users")."""
    from yilian.auth.demo import write_choice
    from yilian.auth.service import AuthError

    try:
        console.print(f"demo users: {write_choice(out)}")
    except AuthError as exc:  # too small a district to have every role's records
        console.print(f"no demo users: {exc}", markup=False)
