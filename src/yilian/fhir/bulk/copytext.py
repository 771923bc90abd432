"""Rows as PostgreSQL ``COPY … FROM STDIN`` text, built in the worker processes.

psycopg's ``Copy.write_row`` costs a few microseconds of Python per row; a bulk load writes
about a dozen index rows per resource, so the writer would spend most of its time there. The
workers therefore encode whole blocks of text (the format of
https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2: tab-separated columns,
``\\N`` for NULL, backslash escapes for backslash and control characters) and the writer only
puts each resource's primary key in front of its lines and hands the blocks to ``Copy.write``.

The key is not known in the worker (it comes from the database sequence, or is the existing row's
key for a known id), so every line starts with ``PK_MARK``: a control character, which ``field``
always escapes, so it can occur nowhere else in the text.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

PK_MARK = "\x01"
_MARK_TAB = PK_MARK + "\t"

_SPECIAL = re.compile(r"[\\\x00-\x1f\x7f]")
# While a block is joined unescaped: NULL stands as _NULL; anything else to escape is suspect.
_NULL = "\x02"
_SUSPECT = re.compile(r"[\\\x00\x03-\x08\x0b-\x1f\x7f]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def escape(text: str) -> str:
    """``text`` as one COPY text column: backslashes doubled, control characters escaped."""
    if _SPECIAL.search(text) is None:
        return text
    return _SPECIAL.sub(_escape_one, text)


def escape_json(text: str) -> str:
    """Compact JSON (``yilian.jsonutil.dumps``) as a COPY column.

    JSON encoders escape every control character inside strings and the compact form has no
    raw whitespace, so the backslash is the only character that needs escaping.
    """
    return text.replace("\\", "\\\\")


def unescape_json(field_text: str) -> str:
    """The inverse of ``escape_json``."""
    return field_text.replace("\\\\", "\\")


def field(value: Any) -> str:
    """One column value in COPY text form (NULL is ``\\N``; timestamps in ISO 8601)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, float):
        return repr(value)  # round-trips exactly; PostgreSQL reads inf, -inf and nan too
    return escape(str(value))


def line(values: tuple[Any, ...] | list[Any]) -> str:
    return "\t".join(field(v) for v in values) + "\n"


def marked_lines(rows: list[tuple[Any, ...]]) -> str:
    """Index rows (tuples of ``extract_index_tuples``, all of one width) as lines
    ``PK_MARK \\t col1 \\t col2 …``.

    Almost no value needs escaping, so the block is first joined as it is (NULL as ``_NULL``)
    and then checked in a few passes over the whole text: if the separators, marks and NULLs
    are exactly the ones put there and no value holds a backslash or control character, it is
    the right text; otherwise it is built again value by value.
    """
    if not rows:
        return ""
    lines = []
    nulls = 0
    for row in rows:
        nulls += row.count(None)
        plain = [v if type(v) is str else _NULL if v is None else field(v) for v in row]
        lines.append(_MARK_TAB + "\t".join(plain) + "\n")
    block = "".join(lines)
    if (
        block.count("\t") == len(rows) * len(rows[0])
        and block.count("\n") == len(rows)
        and block.count(PK_MARK) == len(rows)
        and block.count(_NULL) == nulls
        and _SUSPECT.search(block) is None
    ):
        return block.replace(_NULL, "\\N") if nulls else block
    return "".join(_MARK_TAB + "\t".join(field(v) for v in row) + "\n" for row in rows)
