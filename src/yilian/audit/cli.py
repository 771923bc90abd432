"""``yilian audit``: verify the hash chain, show its head and newest entries.

Verification runs in windows, each in its own short read transaction, so that on SQLite (where
every yilian transaction takes the write lock) the service keeps writing while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from yilian.audit.chain import chain_head
from yilian.audit.fhir import to_audit_event
from yilian.audit.models import AuditEntryRow
from yilian.audit.queries import latest
from yilian.audit.verify import Anchor, VerifyReport, verify
from yilian.config import load_settings
from yilian.db import make_engine, session_factory, unit_of_work

app = typer.Typer(help="Tamper-evident audit log (全程可追溯).", no_args_is_help=True)
console = Console()
T = TypeVar("T")
WINDOW = 100_000


@contextmanager
def _database() -> Iterator[sessionmaker[Session]]:
    engine = make_engine(load_settings().database_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def _read(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run a read in its own short transaction (CLI commands never leave one open)."""
    with unit_of_work(factory) as session:
        return work(session)


def parse_anchor(value: str | None) -> Anchor | None:
    if value is None:
        return None
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise typer.BadParameter(
            "expected SEQ:HASH, e.g. 1200:<64 hex digits>", param_hint="--anchor"
        )
    return Anchor(int(seq), digest.lower())


@app.command("verify")
def verify_command(
    start: int = typer.Option(1, min=1, help="First seq to check; earlier entries are trusted."),
    anchor: str | None = typer.Option(
        None, help="SEQ:HASH kept outside the database (from `yilian audit head`)."
    ),
    batch: int = typer.Option(5000, min=1, help="Entries read per query."),
) -> None:
    """Walk the chain; exit 1 naming the first entry that was modified, deleted, moved or forged."""
    pinned = parse_anchor(anchor)
    with _database() as factory:
        total = _read(factory, lambda s: s.scalar(select(func.count(AuditEntryRow.seq))) or 0)
        report = _verify_in_windows(factory, start, batch, total)
        if report.ok and pinned is not None:
            tail = _read(factory, lambda s: verify(s, start=report.head_seq + 1, anchor=pinned))
            report = _merge(report, tail)
    _print_report(report)
    if not report.ok:
        raise typer.Exit(code=1)


def _verify_in_windows(
    factory: sessionmaker[Session], start: int, batch: int, total: int
) -> VerifyReport:
    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("verify", total=max(total - start + 1, 0))
        report: VerifyReport | None = None
        first = start
        while True:

            def window(session: Session, first: int = first) -> VerifyReport:
                return verify(
                    session,
                    start=first,
                    end=first + WINDOW - 1,
                    batch=batch,
                    progress=lambda n: bar.advance(task, n),
                )

            part = _read(factory, window)
            report = part if report is None else _merge(report, part)
            if not part.ok or part.checked < WINDOW:
                return report
            first += WINDOW


def _merge(before: VerifyReport, after: VerifyReport) -> VerifyReport:
    return VerifyReport(
        ok=after.ok,
        checked=before.checked + after.checked,
        first_bad_seq=after.first_bad_seq,
        problem=after.problem,
        detail=after.detail,
        head_seq=max(before.head_seq, after.head_seq),
        seconds=before.seconds + after.seconds,
    )


def _print_report(report: VerifyReport) -> None:
    rate = f"{report.entries_per_second:,.0f} entries/s"
    if report.ok:
        console.print(
            f"[bold green]OK[/] {report.checked:,} entries checked, chain head {report.head_seq} "
            f"({report.seconds:.2f} s, {rate})"
        )
        return
    problem = report.problem.value.upper() if report.problem else "BROKEN"
    console.print(
        f"[bold red]BROKEN[/] at entry {report.first_bad_seq}: [red]{problem}[/] — "
        f"{report.detail}\n{report.checked:,} entries before it verified ({rate})"
    )


@app.command("head")
def head_command() -> None:
    """Print SEQ:HASH of the newest entry — keep it outside the database as an anchor."""
    with _database() as factory:
        seq, digest = _read(factory, chain_head)
    console.print(f"{seq}:{digest}", highlight=False)


@app.command("tail")
def tail_command(
    count: int = typer.Option(20, "-n", "--count", min=1, help="How many entries."),
    as_fhir: bool = typer.Option(False, "--fhir", help="Print FHIR AuditEvent JSON lines."),
) -> None:
    """Show the newest entries, oldest first."""
    with _database() as factory:
        records = _read(factory, lambda s: latest(s, count))
    if as_fhir:
        for record in records:
            console.print_json(json.dumps(to_audit_event(record), ensure_ascii=False))
        return
    table = Table("seq", "recorded (UTC)", "actor", "event", "purpose", "outcome", "resources")
    for r in records:
        table.add_row(
            str(r.seq),
            r.recorded.isoformat(timespec="seconds"),
            r.actor if not r.actor_role else f"{r.actor} ({r.actor_role})",
            r.event,
            r.purpose,
            str(r.outcome),
            ", ".join(r.resources[:3]) + (" …" if len(r.resources) > 3 else ""),
        )
    console.print(table)
