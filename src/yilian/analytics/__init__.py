"""Analytics on the record: SQL-on-FHIR v2 views on DuckDB and Spark."""
