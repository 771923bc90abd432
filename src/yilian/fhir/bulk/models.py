"""Tables of bulk work: asynchronous jobs (``$import``/``$export``) and per-file load progress.

``bulk_file`` is keyed by the file's path *and* a fingerprint of its content, so re-running a load
skips what an earlier run committed, while a file that was replaced gets loaded afresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JsonDocument

PK = BigInteger().with_variant(Integer(), "sqlite")


class BulkJobRow(Base):
    """One asynchronous bulk request; the status URL names it by ``id``."""

    __tablename__ = "bulk_job"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # import | export
    status: Mapped[str] = mapped_column(String(16))  # queued | running | completed | failed | …
    request: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    transaction_time: Mapped[datetime] = mapped_column(DateTime)
    progress: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime)
    updated: Mapped[datetime] = mapped_column(DateTime)


class BulkFileRow(Base):
    """How far loading one input file has got, advanced in the same transaction as each batch."""

    __tablename__ = "bulk_file"
    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(80))  # size:sha256 of the first 64 KiB
    offset: Mapped[int] = mapped_column(BigInteger)  # uncompressed bytes committed
    line: Mapped[int] = mapped_column(Integer)  # lines (or Bundle entries) committed
    loaded: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    done: Mapped[bool] = mapped_column(Boolean)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    updated: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("path", "fingerprint", name="uq_bulk_file_path_print"),)
