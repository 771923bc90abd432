"""``yilian mpi train`` and ``yilian mpi index``: the real-time match's model and key index.

Both work on the configured store (``YILIAN_DATABASE_URL``). ``train --source DIR --out FILE``
instead trains on a ``yilian synth``/export directory and writes the model file, which is how the
shipped default model (``data/chinese-residents.json``) was made.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from sqlalchemy import Engine, delete, insert
from sqlalchemy.orm import Session

from yilian.mpi.chinese import chinese_spec
from yilian.mpi.dedupe import patient_file, read_patients
from yilian.mpi.febrl import DataError
from yilian.mpi.keys import all_keys
from yilian.mpi.models import BlockingKeyRow
from yilian.mpi.trained import save_model, store_records, train_model

KEY_BATCH = 20_000


def _engine() -> Engine:
    from yilian.config import load_settings
    from yilian.db import make_engine
    from yilian.schema import upgrade_to_head

    engine = make_engine(load_settings().database_url)
    upgrade_to_head(engine)
    return engine


def train(
    source: Path | None = typer.Option(
        None, help="Train on DIR/Patient.ndjson[.gz] instead of the store's Patients."
    ),
    out: Path | None = typer.Option(
        None, help="Write the model (JSON) to this file instead of saving it in the store."
    ),
) -> None:
    """Estimate the match model (EM) on every Patient and keep it with the term frequencies.

    The real-time match on Patient create/update scores with it; until a store is trained it
    uses the shipped model.
    """
    started = time.perf_counter()
    engine = None
    if source is not None:
        try:
            records = read_patients(patient_file(source))
        except DataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        engine = _engine()
        with Session(engine) as session:
            records = store_records(session)
    if len(records) < 2:
        typer.echo(f"error: training needs at least 2 Patients, found {len(records)}", err=True)
        raise typer.Exit(2)
    model, report = train_model(records)
    if out is not None:
        text = json.dumps(model.as_json(), ensure_ascii=False, separators=(",", ":"))
        out.write_text(text + "\n", encoding="utf-8")
        where = str(out)
    else:
        engine = engine or _engine()
        with Session(engine) as session, session.begin():
            save_model(session, model)
        where = "the store (mpi_model)"
    typer.echo(
        f"trained on {len(records):,} Patients: {report.candidate_pairs:,} candidate pairs, "
        f"{report.iterations} EM iterations ({'converged' if report.converged else 'not converged'}"
        f"), {time.perf_counter() - started:.1f} s -> {where}"
    )


def rebuild_index(engine: Engine) -> int:
    """Rewrite ``mpi_blocking_key`` for every live Patient; returns the number of keys."""
    with Session(engine) as session, session.begin():
        records = store_records(session)
        chinese_spec().prepare(records)
        session.execute(delete(BlockingKeyRow))
        batch: list[dict[str, object]] = []
        total = 0
        for key, pid in all_keys(records):
            batch.append({"key": key, "patient_id": pid})
            if len(batch) >= KEY_BATCH:
                session.execute(insert(BlockingKeyRow), batch)
                total += len(batch)
                batch = []
        if batch:
            session.execute(insert(BlockingKeyRow), batch)
            total += len(batch)
    return total


def index() -> None:
    """Rebuild the blocking-key index of every Patient (after a bulk load, which defers it)."""
    started = time.perf_counter()
    total = rebuild_index(_engine())
    typer.echo(f"{total:,} blocking keys written in {time.perf_counter() - started:.1f} s")
