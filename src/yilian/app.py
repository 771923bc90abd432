"""The ASGI application: the FHIR API (and, as modules land, their pages and endpoints)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from yilian import __version__
from yilian.config import Settings, load_settings
from yilian.db import make_engine
from yilian.fhir.api import install_error_handlers
from yilian.fhir.api import router as fhir_router
from yilian.fhir.bulk.api import router as bulk_router
from yilian.fhir.runtime import Runtime
from yilian.mpi.realtime import install as install_patient_matching
from yilian.mpi.review.api import fhir_router as merge_router
from yilian.mpi.review.api import router as review_api
from yilian.mpi.review.web import router as review_pages
from yilian.referral.api import install as install_referral
from yilian.schema import upgrade_to_head
from yilian.web.routes import install_web


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    base_url: str | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app for a database; migrations run at start so a fresh file is ready to use."""
    settings = settings or load_settings()
    engine = engine or make_engine(settings.database_url)
    if migrate:
        upgrade_to_head(engine)
    app = FastAPI(
        title="yilian (医联)",
        version=__version__,
        description="FHIR R4 store and API of yilian. OpenAPI docs at /docs.",
    )
    url = base_url or settings.base_url or "http://localhost:8000"
    app.state.runtime = Runtime(engine, url.rstrip("/") + "/fhir")
    install_referral(app)  # /api/referral and slot booking on every Appointment write
    install_patient_matching(app.state.runtime)  # the MPI match on every Patient write
    app.state.runtime.resident_ids = settings.resident_ids
    install_error_handlers(app)
    # Bulk operations first: their fixed paths ($export, $import) must win over /{type}/{id}.
    app.include_router(bulk_router)
    app.include_router(merge_router)  # Patient/$merge before /{type}/{id}
    app.include_router(fhir_router)
    app.include_router(review_api)  # /api/mpi/review (docs/mpi.md "Review queue")
    app.include_router(review_pages)  # /mpi/review: the data steward's pages
    install_web(app)  # the pages: /, /login, /patients/{id}, /static (docs/web.md)
    return app
