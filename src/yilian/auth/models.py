"""Tables of users and their credentials (bearer tokens and web sessions).

Secrets are never stored: a password as its scrypt hash (``passwords``), a token or session
cookie as the SHA-256 of its 256 random bits (a random secret of that size needs no slow hash).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base


class UserRow(Base):
    __tablename__ = "auth_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: tokens only
    practitioner_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    organization_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(DateTime)  # naive UTC


class CredentialRow(Base):
    """A bearer token (``kind`` = token) or a web session (``kind`` = session)."""

    __tablename__ = "auth_credential"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated SMART scopes
    created: Mapped[datetime] = mapped_column(DateTime)
    expires: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (Index("ix_auth_credential_user", "user_id"),)
