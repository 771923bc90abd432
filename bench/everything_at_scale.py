"""`Patient/$everything` and issue #2's three searches on an existing, loaded store.

``bench/store_queries.py`` builds its own 1,000,000-resource database with 20 made-up "heavy"
patients. This script measures a store someone loaded for real (e.g. the whole scale-1.0
district, 11.6 M resources, by ``yilian load``), and never writes to it except what the measured
reads themselves append (audit-chain entries and their AuditEvents):

1. the size of every patient's compartment from the reference index (rows naming a Patient
   through a parameter of R4's patient compartment, AuditEvent left out as ``$everything`` leaves
   it out), once; ``--sizes FILE`` keeps the counts for a re-run;
2. the patients the issue means ("a patient with 500 resources": ``--band 400-600``; if the
   store has none that big, the largest, said so) and typical ones (the median compartment);
3. timings through the service layer (``Runtime.transaction`` → ``FhirService``, audited, as an
   ``admin`` principal behind the real access guard; ``$everything`` of the heavy patients also
   as each one's own family doctor) and over HTTP (uvicorn in a second process, httpx), with
   ``bench/store_queries.py``'s method: warm-up calls, then ``--runs`` calls, values sampled
   from the data.

The HTTP server is this script's ``--serve``: the real app, with the benchmark's admin principal
put on each request by a middleware instead of a bearer-token look-up, because a token needs a
user row, which would change the measured database (the look-up is cached for 2 s per token in
a real server, ``yilian.auth.deps``). Usage:

    .venv/bin/python bench/everything_at_scale.py DATABASE_URL [--runs 100] [--warmup 10]
        [--band 400-600] [--patients 20] [--sizes FILE] [--no-http]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from store_queries import (  # bench/ is the script's directory
    TARGETS_MS,
    Backend,
    Params,
    Query,
    Result,
    call_http,
    call_service,
    diagnose,
    load_avg,
    machine,
    search_queries,
    server,
    timed,
)

from yilian.auth import policy
from yilian.auth.enforce import RequestGuard
from yilian.auth.principal import Principal, Role
from yilian.auth.scopes import ROLE_SCOPES
from yilian.db import make_engine, unit_of_work
from yilian.fhir.compartment import patient_compartment
from yilian.fhir.runtime import RequestContext, Runtime
from yilian.fhir.service import EVERYTHING_LEAVES_OUT

ADMIN = Principal(
    user_id=0,
    username="bench",
    display_name="benchmark",
    role=Role.ADMIN,
    scopes=frozenset(ROLE_SCOPES[Role.ADMIN]),
)
Sizes = Mapping[str, int]  # patient id -> compartment members (patients with none left out)


# ---------------------------------------------------------------------- pure helpers


def parse_band(value: str) -> tuple[int, int]:
    """``400-600`` -> (400, 600); a clear error for anything else."""
    low, sep, high = value.partition("-")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"--band {value!r}: write LOW-HIGH, e.g. 400-600")
    band = int(low), int(high)
    if band[0] > band[1]:
        raise argparse.ArgumentTypeError(f"--band {value!r}: LOW is above HIGH")
    return band


def size_at(sizes: Sizes, patients: int, q: float) -> int:
    """The compartment size at quantile ``q`` (0–1) over all ``patients``, those without any
    member (absent from ``sizes``) counted as 0; nearest-rank."""
    if patients < len(sizes):
        raise ValueError(f"{len(sizes)} patients with members but only {patients} patients")
    if patients == 0:
        raise ValueError("the store has no Patient")
    ordered = sorted(sizes.values())
    rank = max(1, min(patients, int(q * patients + 0.999999)))  # 1-based nearest rank
    zeros = patients - len(ordered)
    return 0 if rank <= zeros else ordered[rank - zeros - 1]


def pick_in_band(
    sizes: Sizes, band: tuple[int, int], k: int, rng: random.Random
) -> tuple[list[str], str]:
    """Up to ``k`` patients whose compartment size is in ``band`` (a random sample of them), or,
    when none is, the ``k`` largest — and a sentence saying which it was."""
    low, high = band
    inside = sorted(p for p, n in sizes.items() if low <= n <= high)
    if inside:
        chosen = rng.sample(inside, min(k, len(inside)))
        return sorted(
            chosen
        ), f"{len(inside):,} patients have {low}-{high} members; {len(chosen)} sampled"
    largest = sorted(sizes, key=lambda p: (-sizes[p], p))[:k]
    if not largest:
        return [], "no patient has a compartment member"
    sizes_text = f"{sizes[largest[-1]]}-{sizes[largest[0]]}"
    return largest, (
        f"no patient has {low}-{high} members: the {len(largest)} largest taken ({sizes_text})"
    )


def pick_near(sizes: Sizes, value: int, k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` patients whose compartment size is nearest to ``value`` (ties sampled)."""
    by_distance: dict[int, list[str]] = {}
    for patient, n in sizes.items():
        by_distance.setdefault(abs(n - value), []).append(patient)
    chosen: list[str] = []
    for distance in sorted(by_distance):
        group = sorted(by_distance[distance])
        chosen += rng.sample(group, min(k - len(chosen), len(group)))
        if len(chosen) == k:
            break
    return sorted(chosen)


def first_calls(paths: list[str], warmup: int) -> list[bool]:
    """For each timed call (``timed`` warms up on the first ``warmup`` cases, then times all of
    them): whether it is the first call for its path, i.e. its data may not be cached yet."""
    seen = set(paths[:warmup])
    first = []
    for path in paths:
        first.append(path not in seen)
        seen.add(path)
    return first


def rotate(items: list[str], runs: int) -> list[str]:
    """``runs`` items cycling over ``items`` (each patient called in turn, as store_queries)."""
    if not items:
        raise ValueError("nothing to rotate over")
    return [items[i % len(items)] for i in range(runs)]


# ---------------------------------------------------------------------------- store


def compartment_keys() -> list[tuple[str, str]]:
    """(type, parameter) pairs that make a resource a member of a patient's compartment."""
    return sorted(
        (res_type, param)
        for res_type, params in patient_compartment().items()
        if res_type not in EVERYTHING_LEAVES_OUT
        for param in params
    )


def _keys_cte() -> tuple[str, dict[str, str]]:
    keys = compartment_keys()
    values = ", ".join(f"(:t{i}, :p{i})" for i in range(len(keys)))
    params = {f"t{i}": t for i, (t, _) in enumerate(keys)}
    params.update({f"p{i}": p for i, (_, p) in enumerate(keys)})
    return f"WITH keys (res_type, param) AS (VALUES {values})", params


def compartment_sizes(engine: Engine) -> dict[str, int]:
    """Reference-index rows per patient through a compartment parameter: one pass over
    ``idx_reference`` (a hash join on the keys, a hash aggregate). A resource naming the same
    patient through two compartment parameters counts twice here; ``exact_size`` does not."""
    cte, params = _keys_cte()
    sql = (
        f"{cte} SELECT r.target_id, count(*) FROM idx_reference r "
        "JOIN keys k ON k.res_type = r.res_type AND k.param = r.param "
        "WHERE r.target_type = 'Patient' GROUP BY r.target_id"
    )
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL work_mem = '256MB'"))  # 700k groups in memory
        return {str(pid): int(n) for pid, n in conn.execute(text(sql), params)}


def exact_size(engine: Engine, patient_id: str) -> int:
    """Distinct current members of one patient's compartment, as ``FhirService.compartment``."""
    cte, params = _keys_cte()
    sql = (
        f"{cte} SELECT count(*) FROM fhir_resource f WHERE f.deleted = false AND f.pk IN ("
        "SELECT r.resource_pk FROM idx_reference r "
        "JOIN keys k ON k.res_type = r.res_type AND k.param = r.param "
        "WHERE r.target_type = 'Patient' AND r.target_id = :patient)"
    )
    with engine.connect() as conn:
        return int(conn.execute(text(sql), {**params, "patient": patient_id}).scalar_one())


def patient_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM fhir_resource WHERE res_type = 'Patient' AND NOT deleted"
                )
            ).scalar_one()
        )


def load_sizes(path: Path | None, engine: Engine, console: Console) -> dict[str, int]:
    """The compartment sizes: from ``path`` when it was written for this database, else
    counted (and written to ``path``)."""
    database = make_url(str(engine.url)).render_as_string(hide_password=True)
    if path is not None and path.exists():
        try:
            kept = json.loads(path.read_text())
            if kept["database"] == database:
                return {str(p): int(n) for p, n in kept["sizes"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SystemExit(f"--sizes {path}: not a file this benchmark wrote ({error})") from None
        raise SystemExit(f"--sizes {path}: written for {kept['database']}, not {database}")
    start = time.perf_counter()
    sizes = compartment_sizes(engine)
    console.log(
        f"compartment sizes of {len(sizes):,} patients counted in "
        f"{time.perf_counter() - start:.1f} s · {load_avg()}"
    )
    if path is not None:
        path.write_text(json.dumps({"database": database, "sizes": sizes}))
    return sizes


def sample_pks(engine: Engine, rng: random.Random, res_type: str, k: int) -> list[int]:
    """``k`` random keys of resources of ``res_type`` without reading every key of the type:
    page samples (``TABLESAMPLE SYSTEM``) growing until enough are found; on SQLite, all keys."""
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            found = list(
                conn.execute(
                    text("SELECT pk FROM fhir_resource WHERE res_type = :t"), {"t": res_type}
                ).scalars()
            )
        else:
            percent, found = 0.02, []
            while percent <= 100:
                found = list(
                    conn.execute(
                        text(
                            f"SELECT pk FROM fhir_resource TABLESAMPLE SYSTEM ({percent}) "
                            f"REPEATABLE ({rng.randrange(2**31)}) WHERE res_type = :t"
                        ),
                        {"t": res_type},
                    ).scalars()
                )
                if len(found) >= 5 * k or percent == 100:
                    break
                percent = min(100.0, percent * 4)
    if len(found) < k:
        raise SystemExit(f"the store has {len(found)} {res_type} resources, fewer than {k}")
    return rng.sample(sorted(found), k)


def family_doctors(engine: Engine, patients: list[str]) -> dict[str, Principal]:
    """Each patient's family doctor (care manager of a family-doctor contract, an EpisodeOfCare)
    as a principal that the access policy lets read the record; patients without one left out."""
    sql = text(
        "SELECT p.target_id, m.target_id FROM idx_reference p "
        "JOIN idx_reference m ON m.resource_pk = p.resource_pk "
        "WHERE p.res_type = 'EpisodeOfCare' AND p.param = 'patient' "
        "AND p.target_type = 'Patient' AND p.target_id = :patient "
        "AND m.param = 'care-manager' AND m.target_type = 'Practitioner'"
    )
    doctors: dict[str, Principal] = {}
    with unit_of_work(Runtime(engine, "http://bench/fhir").sessions) as session:
        for patient in patients:
            for _, practitioner in session.execute(sql, {"patient": patient}):
                doctor = Principal(
                    user_id=0,
                    username=f"bench-{practitioner}",
                    display_name="benchmark family doctor",
                    role=Role.FAMILY_DOCTOR,
                    scopes=frozenset(ROLE_SCOPES[Role.FAMILY_DOCTOR]),
                    practitioner_id=str(practitioner),
                )
                if policy.may_read_patient(session, doctor, patient):
                    doctors[patient] = doctor
                    break
    return doctors


# ---------------------------------------------------------------------- requests


def context_of(principal: Principal) -> Callable[[], RequestContext]:
    """A fresh context per request, guarded as an authenticated request of ``principal``."""

    def make() -> RequestContext:
        return RequestContext(
            actor=principal.actor,
            purpose="TREAT",
            source="bench",
            request_id=str(uuid.uuid4()),
            role=principal.role.value,
            guard=RequestGuard(principal),
        )

    return make


def call_as_doctor(
    runtime: Runtime, doctors: Mapping[str, Principal], path: str, params: Params
) -> int:
    patient = path.split("/")[1]
    return call_service(runtime, path, params, context_of(doctors[patient]))


class FixedPrincipal:
    """ASGI middleware: every request is the benchmark's admin (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["principal"] = ADMIN
        await self.app(scope, receive, send)


def serve(url: str, port: int) -> None:
    import uvicorn

    from yilian.app import create_app

    app = create_app(engine=make_engine(url), base_url=f"http://127.0.0.1:{port}", migrate=False)
    app.add_middleware(FixedPrincipal)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def everything_query(label: str, patients: list[str], runs: int) -> Query:
    cases: list[tuple[str, Params]] = [
        (f"Patient/{p}/$everything", []) for p in rotate(patients, runs)
    ]
    return Query(label, TARGETS_MS["everything"], cases)


# ----------------------------------------------------------------------------- main


@dataclass
class Chosen:
    heavy: list[str]
    heavy_members: str  # exact member counts of the heavy patients, "min-max"
    typical: list[str]
    median: int


def choose(
    engine: Engine,
    sizes: Sizes,
    band: tuple[int, int],
    k: int,
    rng: random.Random,
    console: Console,
) -> Chosen:
    patients = patient_count(engine)
    quantiles = {q: size_at(sizes, patients, q) for q in (0.5, 0.9, 0.99, 0.999, 1.0)}
    console.print(
        f"{patients:,} Patients, {len(sizes):,} with compartment members; compartment size "
        + " · ".join(f"p{q * 100:g} {n}" for q, n in quantiles.items())
        + f"; in {band[0]}-{band[1]}: {sum(band[0] <= n <= band[1] for n in sizes.values()):,}"
    )
    heavy, note = pick_in_band(sizes, band, k, rng)
    median = quantiles[0.5]
    typical = pick_near(sizes, median, k, rng)
    members = ""
    for label, group in (("heavy", heavy), ("typical", typical)):
        exact = [exact_size(engine, p) for p in group]
        members = members or f"{min(exact)}-{max(exact)}"
        console.print(
            f"{label}: {len(group)} patients, members (exact, distinct) "
            f"min {min(exact)} · median {statistics.median(exact):g} · max {max(exact)}"
        )
    console.print(note)
    return Chosen(heavy, members, typical, median)


def report(results: list[Result], warmup: int, console: Console) -> None:
    table = Table(
        "layer",
        "query",
        "runs",
        "entries",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "client CPU p50 ms",
        "target p95",
    )
    for r in results:
        p95 = r.pct(95)
        table.add_row(
            r.layer,
            r.query.label,
            str(len(r.timings)),
            f"{sum(r.entries) / len(r.entries):.1f}",
            f"{r.pct(50):.1f}",
            f"{p95:.1f}",
            f"{r.pct(99):.1f}",
            f"{max(r.timings):.1f}",
            r.cpu_p50(),
            f"≤ {r.query.target_ms:.0f} {'ok' if p95 <= r.query.target_ms else 'MISS'}",
        )
    console.print(table)
    for r in results:
        first = first_calls([path for path, _ in r.query.cases], warmup)
        cold = [t for t, f in zip(r.timings, first, strict=True) if f]
        warm = [t for t, f in zip(r.timings, first, strict=True) if not f]
        if cold and warm:
            console.print(
                f"{r.layer} {r.query.label}: first call of a value {len(cold)}× "
                f"p50 {statistics.median(cold):.1f} ms, max {max(cold):.1f}; "
                f"repeated values {len(warm)}× p50 {statistics.median(warm):.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("database_url", help="an existing, loaded store (not changed but audit)")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--everything-runs", type=int, help="runs of each $everything query (default --runs)"
    )
    parser.add_argument("--band", type=parse_band, default=(400, 600), help="LOW-HIGH members")
    parser.add_argument("--patients", type=int, default=20, help="patients per group, rotated")
    parser.add_argument("--sizes", type=Path, help="keep / reuse the compartment sizes here")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--no-doctor", action="store_true", help="skip the family-doctor run")
    parser.add_argument("--profile", action="store_true", help="diagnose one call of each query")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.everything_runs = args.everything_runs or args.runs
    if min(args.runs, args.everything_runs, args.patients) < 1 or args.warmup < 0:
        parser.error("--runs, --everything-runs, --patients: at least 1; --warmup at least 0")
    try:
        url = make_url(args.database_url)
    except ArgumentError as error:
        parser.error(f"database_url {args.database_url!r}: {error}")
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        parser.error(f"database_url: PostgreSQL or SQLite, not {url.get_backend_name()}")
    if args.serve:
        serve(args.database_url, args.port)
        return
    console = Console(width=150)
    console.print(machine())
    engine = make_engine(args.database_url)
    rng = random.Random(args.seed)
    sizes = load_sizes(args.sizes, engine, console)
    if not sizes:
        raise SystemExit(f"{url.render_as_string()}: no patient compartment in idx_reference")
    chosen = choose(engine, sizes, args.band, args.patients, rng, console)
    queries = [
        *search_queries(engine, rng, functools.partial(sample_pks, engine, rng, k=args.runs)),
        everything_query(
            f"Patient/$everything (members {chosen.heavy_members})",
            chosen.heavy,
            args.everything_runs,
        ),
        everything_query(
            f"Patient/$everything (median {chosen.median})", chosen.typical, args.everything_runs
        ),
    ]
    runtime = Runtime(engine, "http://bench/fhir")
    results: list[Result] = []
    as_admin = functools.partial(call_service, runtime, context=context_of(ADMIN))
    for query in queries:
        results.append(timed("db", "service", query, as_admin, args.warmup))
        console.log(f"service {query.label}: done · {load_avg()}")
    if not args.no_doctor:
        doctors = family_doctors(engine, chosen.heavy)
        console.print(f"{len(doctors)} of {len(chosen.heavy)} heavy patients have a family doctor")
        if doctors:
            query = everything_query(
                "Patient/$everything, family doctor", sorted(doctors), args.everything_runs
            )
            call = functools.partial(call_as_doctor, runtime, doctors)
            results.append(timed("db", "service", query, call, args.warmup))
            console.log(f"service {query.label}: done · {load_avg()}")
    if not args.no_http:
        command = [sys.executable, __file__, args.database_url, "--serve", "--port", str(args.port)]
        with server(args.database_url, args.port, "unused", command) as client:
            for query in queries:
                results.append(
                    timed("db", "http", query, functools.partial(call_http, client), args.warmup)
                )
                console.log(f"http {query.label}: done · {load_avg()}")
    report(results, args.warmup, console)
    if args.profile:  # statements, the slowest one's plan and a profile of one request each
        backend = Backend(url.get_backend_name(), args.database_url, engine)
        for query in queries:
            first = Query(query.label, query.target_ms, query.cases[:1])
            diagnose(backend, runtime, first, console, growth_calls=0)
    console.print(machine())


if __name__ == "__main__":
    main()
