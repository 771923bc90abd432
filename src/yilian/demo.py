"""``yilian demo``: the README's first command in one process (ADR 0021).

Generate a small synthetic Changning district once, deduplicate its Patients, load both into the
configured store, make the hospitals' referral slots and the demo users, fill the data steward's
review queue, then serve. Each step reuses what exists, so a re-run starts serving in seconds:

1. ``synth`` — only when ``DATA/synth`` is missing (written to ``synth.partial`` and renamed, so
   an interrupted run leaves nothing half-made behind);
2. ``mpi dedupe`` of the district's NDJSON — only when ``DATA/mpi/mpi-report.json`` is missing.
   It reads the files, not the store, so it runs *before* the load and the sure links
   (``DATA/mpi/Patient.ndjson``, the linked Patients as new versions) load in the same pass;
3. ``load`` of the district and the links — the loader skips files it has loaded already;
   then ``mpi index``: the bulk loader defers the real-time match's blocking keys
   (docs/mpi.md), so without it a Patient registered in the demo would not be matched against
   the district (about a second at the default scale; rebuilt each run, so always current);
4. ``referral demo-slots`` — adds only the days that are new (bulk writer, one audit entry);
5. ``users demo`` — existing users are kept;
6. ``mpi review import`` — idempotent: a decided pair keeps its decision;
7. ``serve``.

Each step is the same function as its ``yilian`` command (same output, same checks); running
them in one process pays the imports (~2.5 s of CPU per command) once.
"""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

import typer
from rich.console import Console

from yilian.config import load_settings

DEMO_USERS = (
    ("doctor", "family doctor (家庭医生) with a contracted panel"),
    ("specialist", "Tongren Hospital clinician / referral desk (同仁医院)"),
    ("cdc", "CDC epidemiologist (疾控)"),
    ("manager", "health commission manager (卫健委)"),
    ("facility", "CHC administrator (机构管理员)"),
    ("resident", "a contracted resident (居民)"),
    ("steward", "data steward: the patient matching review queue (主索引数据管理员)"),
)


def _cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (``--workers`` > 0: the loader's
    workers run under a fork server that is only reaped at exit, so they are not counted)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _step(console: Console, name: str, started: float) -> None:
    console.print(
        f"[bold]demo[/bold] {time.monotonic() - started:5.1f} s (CPU {_cpu_seconds():5.1f} s)  "
        f"{name}",
        highlight=False,
    )


def prepare(
    scale: float, duplicates: float, days: int, console: Console, *, workers: int = 2
) -> Path:
    """Steps 1-6; returns the district directory."""
    from yilian.auth.cli import demo as users_demo
    from yilian.cli import migrate
    from yilian.fhir.bulk.cli import load
    from yilian.mpi.cli import dedupe
    from yilian.mpi.review.cli import import_file
    from yilian.mpi.store_cli import index as mpi_index
    from yilian.referral.cli import demo_slots
    from yilian.synth.cli import synth

    started = time.monotonic()
    data = load_settings().data_dir
    district, mpi = data / "synth", data / "mpi"
    if not district.is_dir():
        _step(console, f"generate the district (scale {scale:g}) -> {district}", started)
        partial = data / "synth.partial"
        shutil.rmtree(partial, ignore_errors=True)
        synth(out=partial, scale=scale, years=3, seed=1, end_date="today", visits=1.0,
              gzip=False, duplicates=duplicates)  # fmt: skip
        partial.rename(district)
        shutil.rmtree(mpi, ignore_errors=True)  # links of an earlier district do not apply
    if not (mpi / "mpi-report.json").is_file():
        _step(console, f"patient matching over the district -> {mpi}", started)
        partial = data / "mpi.partial"
        shutil.rmtree(partial, ignore_errors=True)
        dedupe(source=district, out=partial)
        partial.rename(mpi)
    _step(console, "schema and the administrator", started)
    migrate()  # before any user exists: the first run creates 'admin' and prints its password
    _step(
        console, "load the district and the sure links (files loaded before are skipped)", started
    )
    load(paths=[district, mpi / "Patient.ndjson"], batch_size=1000, workers=workers,
         strict=False, validate=True, restart=False)  # fmt: skip
    _step(console, "the real-time patient match's blocking keys", started)
    mpi_index()
    _step(console, f"referral slots for the next {days} days (new days only)", started)
    demo_slots(days=days)
    _step(console, "demo users", started)
    users_demo(directory=district)
    _step(console, "the steward's review queue", started)
    import_file(file=mpi / "mpi-review.csv", report=None)
    _step(console, "ready", started)
    return district


def banner(url: str) -> str:
    logins = "\n".join(f"  {name:<11} {what}" for name, what in DEMO_USERS)
    return (
        f"\nyilian demo: {url}   (FHIR API: {url}/fhir, API docs: {url}/docs)\n"
        "Demo logins (password for all: yilian-demo — synthetic data only):\n"
        f"{logins}\n"
        "API token:  .venv/bin/yilian users token doctor   then  "
        f'curl -H "Authorization: Bearer TOKEN" {url}/fhir/Patient\n'
    )


def demo(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    scale: float = typer.Option(
        0.002, min=0.0001, max=1.0, help="Share of Changning's 693,051 residents (first run)."
    ),
    duplicates: float = typer.Option(
        0.1, min=0.0, max=1.0, help="Share registered again at a hospital, with typos (first run)."
    ),
    days: int = typer.Option(14, min=1, max=60, help="Days of referral slots from tomorrow."),
    workers: int = typer.Option(2, min=0, help="Validation processes of the load (0: inline)."),
    serve: bool = typer.Option(True, help="Serve when ready (--no-serve: prepare only)."),
) -> None:
    """Generate, load and serve the demo district (re-running reuses what exists)."""
    console = Console(stderr=True)
    settings = load_settings()
    if not settings.is_sqlite:
        console.print(
            "note: YILIAN_DATABASE_URL points at PostgreSQL; the demo loads its district there"
        )
    prepare(scale, duplicates, days, console, workers=workers)
    url = f"http://{host}:{port}"
    typer.echo(banner(url))
    if serve:
        from yilian.cli import serve as serve_command

        serve_command(host=host, port=port, workers=1)
