"""FHIR R4 search: typed parameters, SQL over the index tables, snapshot paging, searchset Bundles.

``search`` and ``get_page`` are what the REST layer calls; see docs/search.md for what is
supported.
"""

from yilian.fhir.search.paging import cleanup_expired
from yilian.fhir.search.service import get_page, search

__all__ = ["cleanup_expired", "get_page", "search"]
