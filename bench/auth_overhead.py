"""What the access policy costs: FHIR reads and searches as admin (no restriction) and as each
clinical role (the policy's SQL in the query), through the service layer, plus the credential
lookup every request makes.

Uses a loaded synthetic district with its demo users (``yilian synth`` + ``yilian load`` +
``yilian users demo``) in the configured database (YILIAN_DATABASE_URL / YILIAN_DATA_DIR).
Usage:

    .venv/bin/python bench/auth_overhead.py DISTRICT_DIR [--runs 50]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from yilian.auth.demo import read_choice
from yilian.auth.enforce import RequestGuard
from yilian.auth.principal import Principal
from yilian.auth.service import find_user, issue_token, principal_for_secret, principal_of
from yilian.config import load_settings
from yilian.db import make_engine, unit_of_work
from yilian.fhir.models import ResourceRow
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.service import FhirService, parse_query


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds."""
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _read_patient(patient_id: str, service: FhirService) -> None:
    service.store.read("Patient", patient_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("district", type=Path)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    settings = load_settings()
    engine = make_engine(settings.database_url)
    runtime = Runtime(engine, "http://bench/fhir")
    principals: dict[str, Principal | None] = {"admin (no guard)": None}
    with unit_of_work(runtime.sessions) as session:
        resources = session.execute(
            select(ResourceRow.res_type).where(ResourceRow.res_type != "AuditEvent")
        ).all()
        for user in read_choice(args.district):
            row = find_user(session, user.username)
            if row is None:
                raise SystemExit(f"run `yilian users demo {args.district}` first")
            principals[user.role] = principal_of(row)
        admin = find_user(session, "admin")
        if admin is not None:
            principals["admin (guarded)"] = principal_of(admin)
        token = issue_token(session, find_user(session, "doctor")).value  # type: ignore[arg-type]
        resident = next(u for u in read_choice(args.district) if u.role == "resident")
    print(f"database: {settings.database_url} ({len(resources):,} resources), runs {args.runs}")

    def run(principal: Principal | None, work: Callable[[FhirService], object]) -> None:
        guard = RequestGuard(principal) if principal else None
        ctx = RequestContext(
            actor=principal.actor if principal else "system/bench",
            purpose="TREAT",
            source="bench",
            request_id=str(uuid.uuid4()),
            guard=guard,
        )
        with runtime.transaction(ctx) as service:
            work(service)

    def lookup() -> None:
        with unit_of_work(runtime.sessions) as session:
            principal_for_secret(session, token, kind="token")

    median, p95 = timed(lookup, args.runs)
    print(f"{'credential lookup (every request)':<48} {median:7.2f} ms  p95 {p95:7.2f} ms")
    queries = {
        "Patient?_count=20": "Patient?_count=20",
        "Observation?_summary=count": "Observation?_summary=count",
        "Encounter?_count=50&_include=Encounter:subject": (
            "Encounter?_count=50&_include=Encounter:subject"
        ),
    }
    for name, principal in principals.items():
        if name in ("cdc", "manager", "facility_admin"):
            continue
        for label, query in queries.items():
            res_type, _, q = query.partition("?")

            def search(service: FhirService, res_type: str = res_type, q: str = q) -> None:
                service.search(res_type, parse_query(q))

            median, p95 = timed(functools.partial(run, principal, search), args.runs)
            print(f"{name:<18} {label:<29} {median:7.2f} ms  p95 {p95:7.2f} ms")
        if name == "specialist":
            continue  # the demo resident is not his patient
        read = functools.partial(_read_patient, resident.patient_id or "")
        median, p95 = timed(functools.partial(run, principal, read), args.runs)
        print(f"{name:<18} {'Patient/{id} read':<29} {median:7.2f} ms  p95 {p95:7.2f} ms")


if __name__ == "__main__":
    main()
