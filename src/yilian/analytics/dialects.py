"""The only place where DuckDB and Spark SQL differ for compiled views.

The compiler builds one SQLGlot syntax tree. Everything dialect-neutral (CASE, lambdas,
``transform``/``filter``/``flatten``, structs, casts, ``explode``) is written once in Spark syntax
and SQLGlot generates each engine's spelling (e.g. ``transform(l, x -> ...)`` becomes DuckDB's
``LIST_TRANSFORM(l, LAMBDA x : ...)``). What SQLGlot cannot translate faithfully is how a JSON
value is stored and navigated: DuckDB keeps resources as ``JSON`` and collections as ``JSON[]``;
Spark keeps them as ``VARIANT`` and ``ARRAY<VARIANT>``. Those primitives live in the two
classes below, behind one protocol (see docs/decisions/0003-sql-on-fhir-compiler.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import sqlglot
from sqlglot import exp


@lru_cache(maxsize=512)
def _parse(sql: str, read: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=read)


def _fill(sql: str, read: str, parts: dict[str, exp.Expr]) -> exp.Expr:
    tree = _parse(sql, read).copy()

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name in parts:
            return parts[node.name].copy()
        return node

    return tree.transform(substitute)


def template(sql: str, *, read: str = "spark", **parts: exp.Expr) -> exp.Expr:
    """Parse ``sql`` (in dialect ``read``) and substitute the columns named in ``parts``.

    Placeholders are bare column names starting with ``_`` so that they cannot clash with
    generated lambda variables (``v1``, ``i1``...).
    """
    return _fill(sql, read, parts)


def template_map(sql: str, parts: dict[str, exp.Expr]) -> exp.Expr:
    """``template`` for a computed set of placeholders (Spark syntax)."""
    return _fill(sql, "spark", parts)


class SqlDialect(Protocol):
    """JSON and collection primitives for one engine.

    ``e`` arguments are single JSON elements (a lambda variable or the resource column);
    ``c`` arguments are collections of elements. Indexes given to the compiler are 0-based.
    """

    name: str

    def empty(self) -> exp.Expr: ...

    def children(self, e: exp.Expr, key: str) -> exp.Expr:
        """The children of element ``e`` named ``key``, as a collection (arrays flattened)."""
        ...

    def as_string(self, e: exp.Expr) -> exp.Expr: ...

    def as_double(self, e: exp.Expr) -> exp.Expr: ...

    def as_bigint(self, e: exp.Expr) -> exp.Expr: ...

    def as_boolean(self, e: exp.Expr) -> exp.Expr: ...

    def is_kind(self, e: exp.Expr, kind: str) -> exp.Expr:
        """True when the JSON element is a string/integer/decimal/boolean/object."""
        ...

    def to_element(self, scalar: exp.Expr) -> exp.Expr: ...

    def first(self, c: exp.Expr) -> exp.Expr:
        """The first element, NULL when the collection is empty."""
        ...

    def slice(self, c: exp.Expr, start0: exp.Expr) -> exp.Expr:
        """The collection holding only element ``start0`` (0-based), empty if out of range."""
        ...

    def last(self, c: exp.Expr) -> exp.Expr: ...

    def transform_indexed(self, c: exp.Expr, var: str, index_var: str, body: exp.Expr) -> exp.Expr:
        """``transform`` whose lambda also binds ``index_var`` (the compiler uses it 0-based)."""
        ...

    def index_value(self, index_var: str) -> exp.Expr:
        """The 0-based index bound by ``transform_indexed``."""
        ...

    def raise_error(self, message: str) -> exp.Expr: ...

    def json_path_text(self, e: exp.Expr, steps: list[tuple[str, str]]) -> exp.Expr | None:
        """The text at a JSON path below element ``e``, or None if the engine has no such path.

        ``steps`` are ``(member, suffix)`` with suffix ``""`` (an object member), ``"[0]"`` (its
        first array item) or ``"[*]"`` (every item: the result is a list of texts, flattened).
        """
        ...

    def json_path_elements(self, e: exp.Expr, steps: list[tuple[str, bool]]) -> exp.Expr | None:
        """The collection at a member chain below ``e`` whose array steps are known (``(member,
        is array)``, from the R4 definition), or None if the engine has no JSON paths."""
        ...

    def json_path_single(self, e: exp.Expr, steps: list[tuple[str, bool]]) -> exp.Expr | None:
        """The one JSON element (or NULL) at a member chain below ``e`` without array steps, for
        reading it as a singleton without building a collection; None if the chain has an
        array step or the engine has no JSON paths."""
        return None

    def single_string(self, single: exp.Expr) -> exp.Expr | None:
        """The text of a ``json_path_single`` element that is a JSON string in valid R4 (never
        a number: no decimal-text marker to trim), read in one step; None if not supported."""
        return None

    def text_as(self, text: exp.Expr, kind: str) -> exp.Expr:
        """A JSON primitive's text (from ``json_path_text``) as a value of column ``kind``."""
        ...

    def scan(
        self, table: str, resource_type: str, exprs: list[exp.Expr]
    ) -> tuple[exp.Expr, list[exp.Expr]]:
        """The FROM source for ``table``'s resources, and ``exprs`` rewritten to read it."""
        ...


def _root_key(node: exp.Expr) -> str | None:
    """``k`` when ``node`` is ``resource -> '$.k'`` (a top-level element of the resource)."""
    if not (isinstance(node, exp.JSONExtract) and isinstance(node.this, exp.Column)):
        return None
    if node.this.name != "resource" or node.this.table:
        return None
    path = node.expression
    if isinstance(path, exp.JSONPath) and len(path.expressions) == 2:
        step = path.expressions[1]
        if isinstance(step, exp.JSONPathKey) and isinstance(step.this, str):
            return step.this
    return None


def _root_text_path(node: exp.Expr) -> str | None:
    """The path when ``node`` is ``json_extract_string(resource, '<path without wildcards>')``."""
    if not (isinstance(node, exp.Anonymous) and node.name == "json_extract_string"):
        return None
    target, path = node.expressions
    if not (isinstance(target, exp.Column) and target.name == "resource" and not target.table):
        return None
    text = path.name if isinstance(path, exp.Literal) else ""
    return text if text and "*" not in text else None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBDialect:
    """Resources as DuckDB ``JSON``; collections as ``JSON[]``; lambdas are 1-based.

    Decimals whose text DuckDB would normalise arrive as marked strings (decimal_text.py).
    """

    name = "duckdb"

    _STR = "json_extract_string(_e, '$')"
    _MARKED = f"coalesce(json_type(_e) = 'VARCHAR' AND starts_with({_STR}, chr(1)), FALSE)"
    # The element with a marked decimal re-read from its text.
    _NUMBER = f"CASE WHEN {_MARKED} THEN CAST(substring({_STR}, 2) AS JSON) ELSE _e END"

    def empty(self) -> exp.Expr:
        return template("CAST([] AS JSON[])", read="duckdb")

    def children(self, e: exp.Expr, key: str) -> exp.Expr:
        # Extract once and bind it (a one-element list_transform): every json_extract on the
        # resource re-parses its text, so repeating it per CASE branch multiplied the cost.
        sql = (
            f"list_transform([json_extract(_e, '$.{key}')], lambda jv: "
            "CASE WHEN json_type(jv) = 'ARRAY' THEN CAST(jv AS JSON[]) "
            "WHEN coalesce(json_type(jv), 'NULL') = 'NULL' THEN CAST([] AS JSON[]) "
            "ELSE [jv] END)[1]"
        )
        return template(sql, read="duckdb", _e=e)

    def as_string(self, e: exp.Expr) -> exp.Expr:
        # A marked decimal's string form is its source text. Real strings never start with
        # U+0001, so trimming it is exact and reads ``_e`` once.
        return template(f"ltrim({self._STR}, chr(1))", read="duckdb", _e=e)

    def as_double(self, e: exp.Expr) -> exp.Expr:
        return template(f"TRY_CAST(ltrim({self._STR}, chr(1)) AS DOUBLE)", read="duckdb", _e=e)

    def as_bigint(self, e: exp.Expr) -> exp.Expr:
        return template(f"TRY_CAST({self._NUMBER} AS BIGINT)", read="duckdb", _e=e)

    def as_boolean(self, e: exp.Expr) -> exp.Expr:
        return template(
            "CASE WHEN json_type(_e) = 'BOOLEAN' THEN TRY_CAST(_e AS BOOLEAN) END",
            read="duckdb",
            _e=e,
        )

    def is_kind(self, e: exp.Expr, kind: str) -> exp.Expr:
        types = {
            "string": "('VARCHAR')",
            "integer": "('BIGINT', 'UBIGINT')",
            "decimal": "('BIGINT', 'UBIGINT', 'DOUBLE')",
            "boolean": "('BOOLEAN')",
            "object": "('OBJECT')",
        }[kind]
        test = f"coalesce(json_type(_e) IN {types}, FALSE)"
        if kind == "string":
            test = f"({test} AND NOT {self._MARKED})"
        elif kind == "decimal":
            test = f"({test} OR {self._MARKED})"
        return template(test, read="duckdb", _e=e)

    def to_element(self, scalar: exp.Expr) -> exp.Expr:
        return template("to_json(_s)", read="duckdb", _s=scalar)

    def first(self, c: exp.Expr) -> exp.Expr:
        return template("_c[1]", read="duckdb", _c=c)

    def slice(self, c: exp.Expr, start0: exp.Expr) -> exp.Expr:
        return template("list_slice(_c, _s + 1, _s + 1)", read="duckdb", _c=c, _s=start0)

    def last(self, c: exp.Expr) -> exp.Expr:
        return template("list_slice(_c, -1, -1)", read="duckdb", _c=c)

    def transform_indexed(self, c: exp.Expr, var: str, index_var: str, body: exp.Expr) -> exp.Expr:
        return template(
            f"list_transform(_c, lambda {var}, {index_var}: _b)", read="duckdb", _c=c, _b=body
        )

    def index_value(self, index_var: str) -> exp.Expr:
        return template(f"{index_var} - 1", read="duckdb")

    def raise_error(self, message: str) -> exp.Expr:
        return exp.Anonymous(this="error", expressions=[exp.Literal.string(message)])

    def json_path_text(self, e: exp.Expr, steps: list[tuple[str, str]]) -> exp.Expr | None:
        path = "".join(f".{name}{suffix}" for name, suffix in steps)
        if "[*]" not in path:
            # One json_extract_string per path; scan() reads all of a view's paths in one parse.
            return exp.Anonymous(
                this="json_extract_string", expressions=[e, exp.Literal.string("$" + path)]
            )
        # Wildcards cannot share a multi-path extract: read the path below the first member
        # from that member's JSON (scan() shares its extraction with the other columns).
        name, rest = steps[0][0], path[len(steps[0][0]) + 1 :]
        root = template(f"json_extract(_e, '$.{name}')", read="duckdb", _e=e)
        return exp.Anonymous(
            this="json_extract_string", expressions=[root, exp.Literal.string("$" + rest)]
        )

    def json_path_elements(self, e: exp.Expr, steps: list[tuple[str, bool]]) -> exp.Expr | None:
        # The first member is extracted on its own so that scan() can share it; the rest of
        # the chain is one JSON path whose wildcards flatten arrays as FHIRPath does.
        (name, is_list), rest = steps[0], steps[1:]
        value = template(f"json_extract(_e, '$.{name}')", read="duckdb", _e=e)
        path = "".join(f".{n}" + ("[*]" if a else "") for n, a in rest)
        if is_list or any(a for _, a in rest):
            path = ("$[*]" if is_list else "$") + path
            return template(
                "coalesce(json_extract(_v, _p), CAST([] AS JSON[]))",
                read="duckdb",
                _v=value,
                _p=exp.Literal.string(path),
            )
        single = self.json_path_single(e, steps)
        assert single is not None  # no array step
        return template("list_filter([_v], lambda jm: jm IS NOT NULL)", read="duckdb", _v=single)

    def single_string(self, single: exp.Expr) -> exp.Expr | None:
        if isinstance(single, exp.JSONExtract):
            return exp.JSONExtractScalar(this=single.this, expression=single.expression)
        if isinstance(single, exp.Anonymous) and str(single.this).lower() == "json_extract":
            return exp.Anonymous(this="json_extract_string", expressions=single.expressions)
        return None

    def json_path_single(self, e: exp.Expr, steps: list[tuple[str, bool]]) -> exp.Expr | None:
        if any(a for _, a in steps):
            return None
        (name, _), rest = steps[0], steps[1:]
        value = template(f"json_extract(_e, '$.{name}')", read="duckdb", _e=e)
        path = "".join(f".{n}" for n, _ in rest)
        if path:
            value = exp.Anonymous(
                this="json_extract", expressions=[value, exp.Literal.string("$" + path)]
            )
        return value

    def text_as(self, text: exp.Expr, kind: str) -> exp.Expr:
        sql = {
            "boolean": "TRY_CAST(_t AS BOOLEAN)",
            "integer": "TRY_CAST(_t AS BIGINT)",
            # A marked decimal (decimal_text.py) reads as its source text after the marker.
            "decimal": "TRY_CAST(ltrim(_t, chr(1)) AS DOUBLE)",
        }.get(kind, "_t")
        return template(sql, read="duckdb", _t=text)

    def scan(
        self, table: str, resource_type: str, exprs: list[exp.Expr]
    ) -> tuple[exp.Expr, list[exp.Expr]]:
        # DuckDB's JSON is text: each json_extract on the resource parses the whole document.
        # One multi-path json_extract per row reads every top-level element the view uses in
        # a single parse (measured 3.5x faster than separate extracts); the view reads _k[i].
        # Likewise the scalar paths of direct columns (json_path_text) share one
        # json_extract_string per row; the view reads _s[i].
        keys: dict[str, int] = {}
        texts: dict[str, int] = {}

        def share(node: exp.Expr) -> exp.Expr:
            path = _root_text_path(node)
            if path is not None:
                return template(f"_s[{texts.setdefault(path, len(texts) + 1)}]", read="duckdb")
            key = _root_key(node)
            if key is None:
                return node
            index = keys.setdefault(key, len(keys) + 1)
            return template(f"_k[{index}]", read="duckdb")

        rewritten = [e.transform(share) for e in exprs]
        if not keys and not texts:
            return exp.to_table(table), exprs
        shared = [
            f"{function}(resource, [{', '.join(_quote(p) for p in paths)}]) AS {alias}"
            for function, paths, alias in (
                ("json_extract", ["$." + k for k in keys], "_k"),
                ("json_extract_string", list(texts), "_s"),
            )
            if paths
        ]
        kind = resource_type.replace("'", "''")
        source = _parse(
            f"SELECT resource_type, resource, {', '.join(shared)} "
            f"FROM {table} WHERE resource_type = '{kind}'",
            "duckdb",
        ).copy()
        assert isinstance(source, exp.Select)
        return source.subquery("_src"), rewritten


class SparkDialect:
    """Resources as Spark ``VARIANT`` (Spark ≥ 4.0); collections as ``ARRAY<VARIANT>``.

    Decimals whose text Spark would normalise arrive as marked strings (decimal_text.py):
    ``_MARKED`` detects them, strings never see the marker, numbers are read from the text.
    """

    name = "spark"

    _STR = "try_variant_get(_e, '$', 'string')"
    _MARKED = f"coalesce(startswith({_STR}, chr(1)), FALSE)"
    # The element with a marked decimal re-parsed from its text (its value, scale dropped).
    _NUMBER = f"CASE WHEN {_MARKED} THEN try_parse_json(substring({_STR}, 2)) ELSE _e END"

    def empty(self) -> exp.Expr:
        return template("CAST(array() AS ARRAY<VARIANT>)")

    def children(self, e: exp.Expr, key: str) -> exp.Expr:
        path = f"'$.{key}'"
        sql = (
            f"CASE WHEN try_variant_get(_e, {path}, 'array<variant>') IS NOT NULL "
            f"THEN try_variant_get(_e, {path}, 'array<variant>') "
            f"WHEN try_variant_get(_e, {path}, 'variant') IS NULL "
            f"OR is_variant_null(try_variant_get(_e, {path}, 'variant')) "
            f"THEN CAST(array() AS ARRAY<VARIANT>) "
            f"ELSE array(try_variant_get(_e, {path}, 'variant')) END"
        )
        return template(sql, _e=e)

    def as_string(self, e: exp.Expr) -> exp.Expr:
        # A marked decimal's string form is its source text (FHIRPath toString keeps 1.0).
        return template(
            f"CASE WHEN {self._MARKED} THEN substring({self._STR}, 2) ELSE {self._STR} END", _e=e
        )

    def as_double(self, e: exp.Expr) -> exp.Expr:
        return template(f"try_variant_get({self._NUMBER}, '$', 'double')", _e=e)

    def as_bigint(self, e: exp.Expr) -> exp.Expr:
        return template(f"try_variant_get({self._NUMBER}, '$', 'bigint')", _e=e)

    def as_boolean(self, e: exp.Expr) -> exp.Expr:
        return template(
            "CASE WHEN schema_of_variant(_e) = 'BOOLEAN' "
            "THEN try_variant_get(_e, '$', 'boolean') END",
            _e=e,
        )

    def is_kind(self, e: exp.Expr, kind: str) -> exp.Expr:
        tests = {
            "string": f"(schema_of_variant(_e) = 'STRING' AND NOT {self._MARKED})",
            "integer": "schema_of_variant(_e) IN ('BIGINT', 'INT', 'SMALLINT', 'TINYINT')",
            "decimal": "(schema_of_variant(_e) IN ('BIGINT', 'INT', 'SMALLINT', 'TINYINT', "
            "'DOUBLE', 'FLOAT') OR startswith(schema_of_variant(_e), 'DECIMAL') "
            f"OR {self._MARKED})",
            "boolean": "schema_of_variant(_e) = 'BOOLEAN'",
            "object": "startswith(schema_of_variant(_e), 'OBJECT')",
        }[kind]
        return template(f"coalesce({tests}, FALSE)", _e=e)

    def to_element(self, scalar: exp.Expr) -> exp.Expr:
        return template("CAST(_s AS VARIANT)", _s=scalar)

    def first(self, c: exp.Expr) -> exp.Expr:
        return template("try_element_at(_c, 1)", _c=c)

    def slice(self, c: exp.Expr, start0: exp.Expr) -> exp.Expr:
        return template(
            "CASE WHEN _s >= 0 AND _s < size(_c) THEN slice(_c, _s + 1, 1) "
            "ELSE CAST(array() AS ARRAY<VARIANT>) END",
            _c=c,
            _s=start0,
        )

    def last(self, c: exp.Expr) -> exp.Expr:
        return template(
            "CASE WHEN size(_c) > 0 THEN slice(_c, -1, 1) ELSE CAST(array() AS ARRAY<VARIANT>) END",
            _c=c,
        )

    def transform_indexed(self, c: exp.Expr, var: str, index_var: str, body: exp.Expr) -> exp.Expr:
        return template(f"transform(_c, ({var}, {index_var}) -> _b)", _c=c, _b=body)

    def index_value(self, index_var: str) -> exp.Expr:
        return exp.column(index_var)

    def raise_error(self, message: str) -> exp.Expr:
        return exp.Anonymous(this="raise_error", expressions=[exp.Literal.string(message)])

    def json_path_text(self, e: exp.Expr, steps: list[tuple[str, str]]) -> exp.Expr | None:
        return None  # the generic VARIANT navigation is used (no wildcard paths in variant_get)

    def json_path_elements(self, e: exp.Expr, steps: list[tuple[str, bool]]) -> exp.Expr | None:
        return None

    def json_path_single(self, e: exp.Expr, steps: list[tuple[str, bool]]) -> exp.Expr | None:
        return None

    def single_string(self, single: exp.Expr) -> exp.Expr | None:
        return None

    def text_as(self, text: exp.Expr, kind: str) -> exp.Expr:
        if kind == "string":
            return text
        return exp.cast(text, {"boolean": "BOOLEAN", "integer": "BIGINT"}.get(kind, "DOUBLE"))

    def scan(
        self, table: str, resource_type: str, exprs: list[exp.Expr]
    ) -> tuple[exp.Expr, list[exp.Expr]]:
        # VARIANT is binary and navigated without re-parsing: read the table directly.
        return exp.to_table(table), exprs


DIALECTS: dict[str, SqlDialect] = {"duckdb": DuckDBDialect(), "spark": SparkDialect()}
