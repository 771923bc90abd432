"""The ``yilian`` command line: serve the platform, load data, check the audit chain, analytics."""

from __future__ import annotations

import sys

import typer

from yilian.config import load_settings

app = typer.Typer(
    help="yilian (医联): integrated, tiered, smart health care on one FHIR R4 record.",
    no_args_is_help=True,
)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(
        1, min=1, max=64, help="Server processes (PostgreSQL; each has its own connection pool)."
    ),
) -> None:
    """Serve the FHIR API and the web pages. The database is YILIAN_DATABASE_URL or SQLite."""
    import os
    import sys

    import uvicorn

    from yilian.app import create_app
    from yilian.auth.cli import initial_admin_message

    settings = load_settings()
    base_url = settings.base_url or f"http://{host}:{port}"
    application = create_app(settings, base_url=base_url)
    message = initial_admin_message()
    if message:
        typer.echo(message, err=True)
    typer.echo(f"yilian on {base_url}  (FHIR: {base_url}/fhir, API docs: {base_url}/docs)")
    typer.echo(f"database: {settings.database_url}")
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="info")
        return
    if settings.is_sqlite:  # one writer at a time anyway: more processes only queue on the lock
        raise typer.BadParameter("more than one worker needs PostgreSQL", param_hint="--workers")
    # Each worker process builds its own app (and engine) from the environment (ADR 0013). As
    # uvicorn's own command: workers spawned from this console script died at start. No access
    # log lines: the audit chain records every request.
    os.environ["YILIAN_BASE_URL"] = base_url
    command = [sys.executable, "-m", "uvicorn", "yilian.app:create_app", "--factory", "--host",
               host, "--port", str(port), "--workers", str(workers), "--no-access-log"]  # fmt: skip
    os.execv(sys.executable, command)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to the newest version."""
    from yilian.auth.cli import initial_admin_message
    from yilian.db import make_engine
    from yilian.schema import upgrade_to_head

    settings = load_settings()
    upgrade_to_head(make_engine(settings.database_url))
    typer.echo(f"schema is up to date: {settings.database_url}")
    message = initial_admin_message()
    if message:
        typer.echo(message, err=True)


def _mount_demo() -> None:
    from yilian.demo import demo

    app.command(help="Generate, load and serve the demo district (the README's first command).")(
        demo
    )


def _mount_load() -> None:
    from yilian.fhir.bulk.cli import load

    app.command(help="Bulk-load NDJSON or Bundle files (resumable, validated).")(load)


def _mount_export() -> None:
    from yilian.fhir.bulk.cli import export

    app.command(help="Export resources as NDJSON (FHIR Bulk Data layout).")(export)


def _mount_synth() -> None:
    from yilian.synth.cli import synth

    app.command(help="Generate a synthetic Changning district as FHIR NDJSON.")(synth)


def _mount_audit() -> None:
    from yilian.audit.cli import app as audit_app

    app.add_typer(audit_app, name="audit", help="Check and read the hash-chained audit log.")


def _mount_store() -> None:
    from yilian.fhir.integrity import app as store_app

    app.add_typer(store_app, name="store", help="Check the search index for orphan rows.")


def _mount_users() -> None:
    from yilian.auth.cli import app as users_app

    app.add_typer(users_app, name="users", help="Users, roles and bearer tokens.")


def _mount_views() -> None:
    from yilian.analytics.cli import app as views_app

    app.add_typer(views_app, name="views", help="SQL-on-FHIR v2 views on DuckDB or Spark.")


def _mount_sql() -> None:
    from yilian.analytics.cli import sql

    app.command("sql", help="Run SQL over the materialised views.")(sql)


def _mount_referral() -> None:
    from yilian.referral.cli import app as referral_app

    app.add_typer(referral_app, name="referral", help="Referral slots: release job, generation.")


def _mount_mpi() -> None:
    from yilian.mpi.cli import app as mpi_app

    app.add_typer(mpi_app, name="mpi", help="Master patient index: match and link residents.")


# The command groups of the modules that have them, in the order ``--help`` lists them.
GROUPS = {
    "demo": _mount_demo,
    "load": _mount_load,
    "export": _mount_export,
    "synth": _mount_synth,
    "audit": _mount_audit,
    "store": _mount_store,
    "users": _mount_users,
    "views": _mount_views,
    "sql": _mount_sql,
    "referral": _mount_referral,
    "mpi": _mount_mpi,
}


def _mount(argv: list[str]) -> None:
    """Attach the command group a command line asks for, or all of them (``--help``, tests).

    Importing every group costs ~2.5 s of CPU per call (DuckDB, pyarrow, pypinyin, FastAPI), which
    the demo's eight ``yilian`` calls paid each time; a known first word needs only its own group.
    """
    requested = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    if requested in ("serve", "migrate"):
        return  # defined above, they need no group
    if requested in GROUPS:
        GROUPS[requested]()
        return
    for mount in GROUPS.values():
        mount()


_mount(sys.argv)
