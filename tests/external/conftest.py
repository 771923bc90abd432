"""Reuse the FHIR test client of tests/fhir."""

from tests.fhir.conftest import client

__all__ = ["client"]
