"""Tables of the FHIR store: current resources, their full history, and search indexes.

Every index row points at ``fhir_resource.pk`` and is rewritten in the same transaction as the
resource it indexes, so a search never sees a half-indexed write. The index tables have neither a
foreign key nor a primary key of their own (ADR 0010): the writers own the rows' lifecycle (a
new version deletes its old rows; resources are never hard-deleted) and ``yilian store check``
finds orphans; the foreign key checks and the surrogate key's sequence and B-tree were a third of
the server's CPU in a bulk load. Dates are stored as naive UTC
in ``[low, high)`` ranges: a partial date such as ``2024-05`` covers the whole month.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base, JsonDocument

PK = BigInteger().with_variant(
    Integer(), "sqlite"
)  # SQLite autoincrements INTEGER PRIMARY KEY only


class ResourceRow(Base):
    """The current version of every resource (deleted ones too: ``deleted`` marks them)."""

    __tablename__ = "fhir_resource"
    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[dict[str, object]] = mapped_column(JsonDocument)
    __table_args__ = (
        UniqueConstraint("res_type", "res_id", name="uq_fhir_resource_type_id"),
        Index("ix_fhir_resource_type_updated", "res_type", "last_updated"),
        Index("ix_fhir_resource_updated", "last_updated"),
    )


class ResourceVersionRow(Base):
    """Every version ever written, including deletions (content null) — vread and _history."""

    __tablename__ = "fhir_resource_version"
    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pk"))
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(DateTime)
    method: Mapped[str] = mapped_column(String(8))  # POST | PUT | DELETE
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[dict[str, object] | None] = mapped_column(JsonDocument, nullable=True)
    __table_args__ = (
        UniqueConstraint("resource_pk", "version_id", name="uq_fhir_version_resource_version"),
        Index("ix_fhir_version_type_updated", "res_type", "last_updated"),
        Index("ix_fhir_version_updated", "last_updated"),
    )


def _owner() -> Mapped[int]:
    return mapped_column(PK)


# The ORM wants an identity for a mapped class; index rows are only ever selected as columns, so
# the mapper's key is nominal (no constraint in the database, see the module docstring).
_ROW_IDENTITY = {"primary_key": ["resource_pk", "res_type", "param"]}


class StringIndex(Base):
    __tablename__ = "idx_string"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    value_norm: Mapped[str] = mapped_column(Text)  # lower-case, accents stripped
    value_exact: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("ix_idx_string_lookup", "res_type", "param", "value_norm"),
        Index("ix_idx_string_owner", "resource_pk"),
    )


class TokenIndex(Base):
    __tablename__ = "idx_token"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    system: Mapped[str | None] = mapped_column(Text, nullable=True)
    code: Mapped[str | None] = mapped_column(Text, nullable=True)
    text_norm: Mapped[str | None] = mapped_column(Text, nullable=True)  # display/text for :text
    __table_args__ = (
        Index("ix_idx_token_lookup", "res_type", "param", "code", "system"),
        Index("ix_idx_token_owner", "resource_pk"),
    )


class DateIndex(Base):
    __tablename__ = "idx_date"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    low: Mapped[datetime] = mapped_column(DateTime)  # inclusive
    high: Mapped[datetime] = mapped_column(DateTime)  # exclusive
    __table_args__ = (
        Index("ix_idx_date_lookup", "res_type", "param", "low", "high"),
        Index("ix_idx_date_owner", "resource_pk"),
    )


class NumberIndex(Base):
    __tablename__ = "idx_number"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index("ix_idx_number_lookup", "res_type", "param", "value"),
        Index("ix_idx_number_owner", "resource_pk"),
    )


class QuantityIndex(Base):
    __tablename__ = "idx_quantity"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    system: Mapped[str | None] = mapped_column(Text, nullable=True)
    code: Mapped[str | None] = mapped_column(Text, nullable=True)
    unit: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (
        Index("ix_idx_quantity_lookup", "res_type", "param", "value"),
        Index("ix_idx_quantity_owner", "resource_pk"),
    )


class ReferenceIndex(Base):
    __tablename__ = "idx_reference"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_url: Mapped[str | None] = mapped_column(Text, nullable=True)  # absolute/canonical refs
    identifier_system: Mapped[str | None] = mapped_column(Text, nullable=True)
    identifier_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (
        Index("ix_idx_reference_lookup", "res_type", "param", "target_id", "target_type"),
        Index("ix_idx_reference_target", "target_type", "target_id"),
        Index("ix_idx_reference_owner", "resource_pk"),
    )


class UriIndex(Base):
    __tablename__ = "idx_uri"
    __mapper_args__ = _ROW_IDENTITY
    resource_pk: Mapped[int] = _owner()
    res_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("ix_idx_uri_lookup", "res_type", "param", "value"),
        Index("ix_idx_uri_owner", "resource_pk"),
    )


IndexTable = (
    type[StringIndex]
    | type[TokenIndex]
    | type[DateIndex]
    | type[NumberIndex]
    | type[QuantityIndex]
    | type[ReferenceIndex]
    | type[UriIndex]
)

INDEX_TABLES: dict[str, IndexTable] = {
    "string": StringIndex,
    "token": TokenIndex,
    "date": DateIndex,
    "number": NumberIndex,
    "quantity": QuantityIndex,
    "reference": ReferenceIndex,
    "uri": UriIndex,
}
