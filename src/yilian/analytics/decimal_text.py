"""Keep the source text of JSON decimals that the engines' JSON types would normalise.

FHIR decimals carry their precision in their text: ``1.0`` and ``1.00`` are different values
for FHIRPath ``lowBoundary()``/``highBoundary()`` (FHIRPath N2 §5.7.5; FHIR R4 "decimal":
precision is part of the value, https://hl7.org/fhir/R4/datatypes.html#decimal). Both engines
lose that text when they parse JSON:

- Spark's ``parse_json`` keeps the scale in the VARIANT bytes, but every SQL reader
  (``variant_get``, ``schema_of_variant``, casts, ``to_json``) strips trailing zeros, so ``1.0``
  reads back as ``1`` (DECIMAL(1,0)); numbers with an exponent become DOUBLE. No SQL function
  exposes the stored scale (checked on Spark 4.3).
- DuckDB's ``json_extract`` re-serialises numbers through a double: ``1.50`` reads back as
  ``1.5`` (``1.0`` happens to survive).

So before parsing, in SQL on the raw line (no Python per row, runs unchanged on a cluster),
every number whose text would change — a fraction ending in 0, or an exponent — is rewritten to
a JSON string ``"\\u0001<text>"``. FHIR strings cannot contain U+0001 (FHIR R4 "string": no
characters below U+0020 except tab, CR, LF), so the marker never collides with real data; the
dialects (dialects.py) read marked strings back as decimals. Other numbers stay numbers: both
engines reproduce integers and ``1.5``-style decimals exactly.

How the rewrite stays outside strings with one global regex replace (RE2 and Java): the
pattern matches either a whole string token (group 1) or a lossy number (group 2, then the one
character after it, group 3). The replacement ``\\1 STX \\2 ETX \\3`` leaves a string token
followed by an empty ``STX ETX`` pair (removed next), and wraps a number in ``STX … ETX``, then
turned into the marked string. Raw STX/ETX cannot occur in JSON text (control characters must
be escaped, RFC 8259 §7), so they are unambiguous.
"""

from __future__ import annotations

from typing import Any

DECIMAL_MARK = "\u0001"

_NUMBER = r"-?[0-9]+(?:\.[0-9]*0|(?:\.[0-9]+)?[eE][+-]?[0-9]+)"
# Whole string token | lossy number + the character that ends it (RE2 has no look-ahead).
TOKEN_PATTERN = r'("[^"\\]*(?:\\.[^"\\]*)*")|(' + _NUMBER + r")([^0-9.eE]|$)"
# Pre-check without string awareness (may over-match, never under-matches): a lossy number
# sits between JSON punctuation. Lines without one skip the rewrite.
CANDIDATE_PATTERN = r"[:,\[][ \t\r\n]*" + _NUMBER + r"[ \t\r\n]*[,}\]]"

_STX, _ETX = "\u0002", "\u0003"
_OPEN = '"\\u0001'  # the JSON text of a string starting with the marker


def duckdb_marking_sql(column: str) -> str:
    """DuckDB SQL: ``column`` (one JSON document as text) with lossy numbers marked."""
    rewritten = (
        f"replace(replace(replace(regexp_replace({column}, '{TOKEN_PATTERN}', "
        f"'\\1' || chr(2) || '\\2' || chr(3) || '\\3', 'g'), chr(2) || chr(3), ''), "
        f"chr(2), '{_OPEN}'), chr(3), '\"')"
    )
    check = f"regexp_matches({column}, '{CANDIDATE_PATTERN}')"
    return f"CASE WHEN {check} THEN {rewritten} ELSE {column} END"


def spark_marking_column(column: Any) -> Any:
    """Spark ``Column``: ``column`` (one JSON document as text) with lossy numbers marked.

    Built with the DataFrame API so that the patterns are not subject to SQL string escaping.
    """
    from pyspark.sql import functions as f

    wrapped = f.regexp_replace(column, TOKEN_PATTERN, f"$1{_STX}$2{_ETX}$3")
    rewritten = f.replace(
        f.replace(f.replace(wrapped, f.lit(_STX + _ETX), f.lit("")), f.lit(_STX), f.lit(_OPEN)),
        f.lit(_ETX),
        f.lit('"'),
    )
    return f.when(column.rlike(CANDIDATE_PATTERN), rewritten).otherwise(column)
