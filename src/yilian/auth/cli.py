"""``yilian users``: administer users and their bearer tokens on the configured database.

Each command runs in one transaction (nothing is half-written when a check fails) and exits
non-zero with the rule that failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.auth.demo import (
    DEMO_FILE,
    DEMO_PASSWORD,
    create_demo_users,
    read_choice,
    write_choice,
)
from yilian.auth.passwords import PasswordError
from yilian.auth.scopes import ScopeError
from yilian.auth.service import (
    AuthError,
    create_user,
    ensure_initial_admin,
    find_user,
    issue_token,
    list_users,
    parse_role,
    set_password,
)
from yilian.config import load_settings
from yilian.db import make_engine, session_factory, unit_of_work
from yilian.schema import upgrade_to_head

app = typer.Typer(
    help="Users, roles and bearer tokens (docs/authorization.md).", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


@contextmanager
def _session() -> Iterator[Session]:
    """One transaction on the configured database, migrated first; errors exit 1 cleanly."""
    engine = make_engine(load_settings().database_url)
    try:
        upgrade_to_head(engine)
        with unit_of_work(session_factory(engine)) as session:
            yield session
    except (AuthError, ScopeError, PasswordError) as exc:
        err.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _read_password() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@app.command()
def create(
    name: str = typer.Argument(..., help="Username: lower-case letters, digits, . _ -"),
    role: str = typer.Option(
        ...,
        "--role",
        help="admin, family_doctor, specialist, cdc, manager, facility_admin or resident",
    ),  # fmt: skip
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    practitioner: str | None = typer.Option(None, "--practitioner", help="Practitioner id."),
    patient: str | None = typer.Option(None, "--patient", help="Patient id (role resident)."),
    organization: str | None = typer.Option(None, "--organization", help="Organization id."),
    display_name: str | None = typer.Option(None, "--display-name", help="Name shown on pages."),
) -> None:
    """Create a user. Without --password-stdin the user signs in with bearer tokens only."""
    password = _read_password() if password_stdin else None
    with _session() as session:
        user = create_user(
            session,
            name,
            parse_role(role),
            display_name=display_name,
            password=password,
            practitioner_id=practitioner,
            patient_id=patient,
            organization_id=organization,
        )
        console.print(f"created user {user.username} (role {user.role}, id {user.id})")


@app.command()
def token(
    name: str = typer.Argument(..., help="Username."),
    scope: list[str] = typer.Option(
        [],
        "--scope",
        help="SMART scope, e.g. user/Observation.read (repeatable; default: the role's scopes).",
    ),  # fmt: skip
    days: int = typer.Option(30, "--days", help="Lifetime in days (1-365)."),
) -> None:
    """Print a new bearer token for NAME (shown once; use it as 'Authorization: Bearer …')."""
    with _session() as session:
        user = find_user(session, name)
        if user is None:
            raise AuthError(f"no user {name!r} [rule: user-exists]")
        issued = issue_token(session, user, scopes=scope, days=days)
        err.print(
            f"token for {name}, scopes {' '.join(sorted(issued.scopes))}, expires "
            f"{issued.expires:%Y-%m-%d %H:%M} UTC"
        )
        typer.echo(issued.value)


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """List users with their role and linked records."""
    with _session() as session:
        users = list_users(session)
        if as_json:
            for u in users:
                typer.echo(json.dumps({
                    "username": u.username, "role": u.role, "display_name": u.display_name,
                    "practitioner": u.practitioner_id, "patient": u.patient_id,
                    "organization": u.organization_id, "active": u.active,
                }, ensure_ascii=False))  # fmt: skip
            return
        table = Table("username", "role", "name", "practitioner", "patient", "organization")
        for u in users:
            table.add_row(
                u.username,
                u.role,
                u.display_name,
                u.practitioner_id or "",
                u.patient_id or "",
                u.organization_id or "",
            )
        console.print(table)


@app.command()
def password(
    name: str = typer.Argument(..., help="Username."),
) -> None:
    """Set NAME's password from the first line of stdin."""
    value = _read_password()
    with _session() as session:
        user = find_user(session, name)
        if user is None:
            raise AuthError(f"no user {name!r} [rule: user-exists]")
        set_password(session, user, value)
        console.print(f"password of {name} set")


@app.command()
def demo(
    directory: Path = typer.Argument(..., help="The district directory of `yilian synth`."),
) -> None:
    """Create the demo users of a loaded synthetic district (one per role); existing are kept.

    The choice is DIR/demo-users.json; when missing it is made from DIR's NDJSON and written.
    """
    if not (directory / DEMO_FILE).exists():
        try:
            write_choice(directory)
        except (OSError, AuthError) as exc:
            err.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
    with _session() as session:
        done = create_demo_users(session, read_choice(directory))
        table = Table("username", "password", "role", "name", "created")
        for user, created in done:
            table.add_row(
                user.username,
                DEMO_PASSWORD,
                user.role,
                user.display_name,
                "yes" if created else "kept",
            )
        console.print(table)


@app.command("break-glass")
def break_glass(
    limit: int = typer.Option(50, min=1, max=10_000, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """List break-glass accesses (purpose of use BTG) from the audit chain, newest first."""
    from yilian.audit.models import AuditEntryRow

    with _session() as session:
        rows = session.execute(
            select(AuditEntryRow)
            .where(AuditEntryRow.purpose == "BTG")
            .order_by(AuditEntryRow.seq.desc())
            .limit(limit)
        ).scalars()
        if as_json:
            for r in rows:
                typer.echo(json.dumps({
                    "seq": r.seq, "recorded": f"{r.recorded:%Y-%m-%dT%H:%M:%S}Z",
                    "actor": r.actor, "role": r.actor_role, "event": r.event,
                    "resources": r.resources, "patients": r.patients, "outcome": r.outcome,
                    "reason": r.outcome_desc,
                }, ensure_ascii=False))  # fmt: skip
            return
        table = Table("seq", "recorded (UTC)", "actor", "event", "patients", "outcome", "reason")
        for r in rows:
            table.add_row(
                str(r.seq),
                f"{r.recorded:%Y-%m-%d %H:%M:%S}",
                r.actor,
                r.event,
                " ".join(r.patients),
                str(r.outcome),
                r.outcome_desc or "",
            )
        console.print(table)


def initial_admin_message() -> str | None:
    """Create the initial administrator if there are no users; the message to print once."""
    engine = make_engine(load_settings().database_url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            password = ensure_initial_admin(session)
    finally:
        engine.dispose()
    if password is None:
        return None
    return (
        f"created the system administrator 'admin' with password {password} — shown only now; "
        "change it with `yilian users password admin` (or set YILIAN_ADMIN_PASSWORD before the "
        "first start)"
    )
