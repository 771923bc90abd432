"""R4 search parameters derived from the official definitions (scripts/gen_search_parameters.py)."""
