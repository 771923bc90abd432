"""Tables of search snapshots: the ordered matches of a multi-page search, kept for an hour.

Paging from a snapshot keeps ``next``/``previous`` correct while other requests write: a page is
a slice of positions fixed when the search ran, so no match is skipped or repeated
(https://hl7.org/fhir/R4/http.html#paging: "the server SHOULD ensure the pages are consistent").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yilian.db import Base
from yilian.fhir.models import PK


class SearchRow(Base):
    """One snapshot: its query (to re-render includes/_summary on later pages) and total."""

    __tablename__ = "fhir_search"
    search_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created: Mapped[datetime] = mapped_column(DateTime)
    expires: Mapped[datetime] = mapped_column(DateTime)
    resource_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    query: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    # Who ran the search (yilian.auth): a later page is served only to the same principal, since
    # the snapshot holds the matches *that principal* may see.
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    __table_args__ = (Index("ix_fhir_search_expires", "expires"),)


class SearchResultRow(Base):
    """One match of a snapshot at a 0-based position.

    ``resource_pk`` has no foreign key on purpose: the snapshot is a cache of pointers, checking
    each of thousands of inserted rows against ``fhir_resource`` would only slow the search, and a
    page joins ``fhir_resource`` anyway.
    """

    __tablename__ = "fhir_search_result"
    search_id: Mapped[str] = mapped_column(
        ForeignKey("fhir_search.search_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_pk: Mapped[int] = mapped_column(PK)
