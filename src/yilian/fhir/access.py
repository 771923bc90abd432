"""The hook through which an access policy sees every read, write and search of the store.

``yilian.auth.enforce.RequestGuard`` implements it; the FHIR layer only knows this protocol, so
the store and search engine stay free of user and role concepts. Methods raise ``FhirError``
(403) to refuse.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from yilian.fhir.store import Access


class AccessGuard(Protocol):
    @property
    def owner(self) -> str:
        """Who the guarded request acts for (search snapshots remember it)."""
        ...

    def check_read(self, session: Session, resource: dict[str, Any]) -> None: ...

    def check_write(
        self,
        session: Session,
        res_type: str,
        new: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> None: ...

    def check_history_across(self, res_type: str | None) -> None: ...

    def search_clause(
        self, resource: Any, types: Collection[str] | None = None
    ) -> ColumnElement[bool] | None:
        """The SQL condition that keeps the rows of ``resource`` the request may read; ``types``
        are the resource types the statement can return, when it is known (None: any)."""
        ...

    def bind(self, session: Session) -> None:
        """The session of the unit of work the guard now serves (for per-request caching)."""
        ...

    def take_denials(self) -> list[Access]:
        """The refusals so far (for the audit chain), forgetting them."""
        ...
