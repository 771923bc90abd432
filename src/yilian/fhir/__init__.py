"""The FHIR R4 store, its REST API, search, bulk data and validation."""
