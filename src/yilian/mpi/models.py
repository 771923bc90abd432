"""Tables of the real-time patient index: blocking keys of every Patient, and the stored model.

``mpi_blocking_key`` is the database index over blocking keys that lets one incoming Patient be
compared with its candidates only (issue #6): one row per (key, Patient), where a key is a 64-bit
hash of one blocking rule's values (same phone tail, same name pinyin + birth year, ...). It is
rewritten on every Patient create/update by the matching write hook and rebuilt in bulk by
``yilian mpi index`` (the bulk loader defers to that step). Rows of deleted Patients are ignored
by the candidate query (it joins the live ``fhir_resource`` rows) and dropped on the next rebuild.

``mpi_model`` holds the parameters estimated by ``yilian mpi train`` from the store's Patients,
with the term frequencies of surnames and given names that the TF adjustment needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JsonDocument


class BlockingKeyRow(Base):
    __tablename__ = "mpi_blocking_key"
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    __table_args__ = (Index("ix_mpi_blocking_key_patient", "patient_id"),)


class ModelRow(Base):
    __tablename__ = "mpi_model"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # {column: {"total": n, "counts": {value: count}}} (values seen at least twice)
    term_frequencies: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    records: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
