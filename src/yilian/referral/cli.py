"""``yilian referral …``: the slot release job and slot generation from the command line.

Each command is one unit of work as the system actor (audited as ``system/yilian-cli``);
``release-slots`` is idempotent, so a scheduler (cron, systemd timer) can run it every few
minutes.
"""

from __future__ import annotations

import datetime as dt

import typer

from yilian.fhir.errors import FhirError
from yilian.fhir.runtime import Runtime

app = typer.Typer(no_args_is_help=True)


def _runtime() -> Runtime:
    from yilian.config import load_settings
    from yilian.db import make_engine
    from yilian.referral.booking import install
    from yilian.schema import upgrade_to_head

    settings = load_settings()
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    runtime = Runtime(engine, (settings.base_url or "http://localhost:8000") + "/fhir")
    install(runtime)
    return runtime


@app.command("release-slots")
def release_slots(
    at: str = typer.Option("", help="Release as of this ISO time (default: now)."),
) -> None:
    """Return unused reserved referral slots whose release time has passed to the public pool."""
    from yilian.fhir.runtime import RequestContext
    from yilian.referral.resources import parse_instant
    from yilian.referral.slots import release_reserved_slots

    moment = parse_instant(at) if at else dt.datetime.now(dt.UTC)
    if moment is None:
        raise typer.BadParameter(f"--at {at!r} is not an ISO date-time", param_hint="--at")
    runtime = _runtime()
    with runtime.transaction(RequestContext.system()) as service:
        released = release_reserved_slots(service, moment)
    typer.echo(f"released {len(released)} reserved slot(s) to the public pool")


@app.command("generate-slots")
def generate(
    organization: str = typer.Option(..., help="Hospital Organization id."),
    department: str = typer.Option(..., help="Department code (e.g. cardiology)."),
    location: str = typer.Option(..., help="Location id of the clinic."),
    first: str = typer.Option(..., help="First day, YYYY-MM-DD."),
    last: str = typer.Option(..., help="Last day, YYYY-MM-DD."),
    clinic_level: str = typer.Option("general", help="expert | general"),
    minutes: int = typer.Option(15, min=5, max=240, help="Slot length in minutes."),
) -> None:
    """Create a department's Schedule and Slots, reserving the configured share for CHCs."""
    from yilian.fhir.runtime import RequestContext
    from yilian.referral.slots import SlotPlan, generate_slots

    try:
        days = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError as exc:
        raise typer.BadParameter(f"dates must be YYYY-MM-DD: {exc}") from exc
    plan = SlotPlan(organization, department, location, *days, clinic_level=clinic_level,
                    minutes=minutes)  # fmt: skip
    runtime = _runtime()
    try:
        with runtime.transaction(RequestContext.system()) as service:
            made = generate_slots(service, plan)
    except FhirError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(
        f"Schedule/{made.schedule_id}: {len(made.created)} slot(s) created "
        f"({len(made.reserved)} reserved for community referrals), {made.existing} already there"
    )


@app.command("demo-slots")
def demo_slots(
    days: int = typer.Option(14, min=1, max=60, help="How many days ahead, from tomorrow."),
) -> None:
    """Schedules and Slots for the demo district's hospitals (referral departments; idempotent)."""
    from yilian.fhir.runtime import RequestContext
    from yilian.referral.demo import generate_demo_slots

    runtime = _runtime()
    context = RequestContext.system()
    with runtime.transaction(context) as service:
        made = generate_demo_slots(service, context, dt.date.today(), days)
    typer.echo(
        f"{made.schedules} schedule(s): {made.created} slot(s) created ({made.reserved} reserved "
        f"for community referrals), {made.existing} already there"
    )
