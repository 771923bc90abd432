"""yilian (医联): integrated, tiered, smart health care on one FHIR R4 record."""

__version__ = "0.1.0"
