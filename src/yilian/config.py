"""Runtime settings, read once from the environment.

``YILIAN_DATABASE_URL`` selects PostgreSQL (``postgresql+psycopg://…``); without it yilian uses
an embedded SQLite file under ``YILIAN_DATA_DIR`` (default ``./yilian-data``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    base_url: str | None
    resident_ids: str = "reject"  # YILIAN_RESIDENT_IDS: reject | unverified (docs/mpi.md)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def normalise_database_url(url: str) -> str:
    """Accept the plain ``postgresql://`` form people paste and use the psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("YILIAN_DATA_DIR", "yilian-data")).resolve()
    url = os.environ.get("YILIAN_DATABASE_URL") or f"sqlite:///{data_dir / 'yilian.sqlite'}"
    resident_ids = os.environ.get("YILIAN_RESIDENT_IDS", "reject")
    if resident_ids not in ("reject", "unverified"):
        raise ValueError(f"YILIAN_RESIDENT_IDS must be reject or unverified, got {resident_ids!r}")
    return Settings(
        data_dir=data_dir,
        database_url=normalise_database_url(url),
        base_url=os.environ.get("YILIAN_BASE_URL"),
        resident_ids=resident_ids,
    )
