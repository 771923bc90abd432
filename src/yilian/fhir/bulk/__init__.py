"""Bulk data in and out of the FHIR store: NDJSON/Bundle loading, ``$import`` and ``$export``.

The loader validates and indexes in worker processes while the main process writes each batch in
one transaction (COPY on PostgreSQL), recording per-file progress in the same transaction so an
interrupted load resumes after its last committed batch. See docs/bulk.md.
"""
