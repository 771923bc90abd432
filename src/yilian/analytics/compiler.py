"""Compile a ViewDefinition into one SQL query (SQLGlot tree → DuckDB or Spark SQL).

How a view becomes SQL (one pass, no per-row Python):
- every FHIRPath expression compiles to either a *collection* (an array of JSON elements) or a
  typed *scalar* (boolean, string, number), following FHIRPath's collection semantics
  (https://hl7.org/fhirpath/N1/#navigation-model): navigation flattens, empty propagates as NULL;
- every ``select`` compiles to an array of row structs for its context element: ``column`` gives
  one row, ``forEach``/``forEachOrNull``/``repeat`` map over a collection, sibling selects are
  cross-joined and ``unionAll`` branches concatenated
  (https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#processing-algorithm);
- the query explodes the array of the resource once, so engines evaluate it vectorised.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sqlglot import exp

from yilian.analytics.dialects import DIALECTS, SqlDialect, template, template_map
from yilian.analytics.errors import ViewDefinitionError
from yilian.analytics.fhirpath import (
    Binary,
    Call,
    EmptyLiteral,
    Index,
    Literal,
    Member,
    Node,
    This,
    Unary,
    Variable,
)
from yilian.analytics.r4paths import member_names, resolve, walk
from yilian.analytics.viewdef import Column, Select, ViewDefinition, validate_view
from yilian.fhir.validation.schema import Field, Kind, resource_node
from yilian.fhir.validation.schema import Node as R4Node

RESOURCE_TABLE = "fhir_resources"

# Column.type (a FHIR type name) → SQL type and the scalar kind used for conversion.
_INTEGER_TYPES = {"integer", "positiveInt", "unsignedInt", "integer64"}
_STRING_KINDS = {"string", "date", "datetime", "time"}
_NUMBER_KINDS = {"integer", "decimal"}
# FHIR primitive types whose JSON form is a string (FHIR R4 §2.6.2 JSON representation).
_STRING_PRIMITIVES = {
    "string", "code", "id", "uri", "url", "canonical", "oid", "uuid", "markdown",
    "base64Binary", "date", "dateTime", "instant", "time",
}  # fmt: skip


def column_kind(fhir_type: str | None) -> str:
    if fhir_type == "boolean":
        return "boolean"
    if fhir_type in _INTEGER_TYPES:
        return "integer"
    if fhir_type == "decimal":
        return "decimal"
    return "string"


# The column kind an R4 primitive element reads as without conversion.
_LEAF_KINDS = {
    Kind.STRING: "string", Kind.DATE: "string", Kind.BOOLEAN: "boolean",
    Kind.INTEGER: "integer", Kind.DECIMAL: "decimal",
}  # fmt: skip


def sql_type(kind: str) -> str:
    return {"boolean": "BOOLEAN", "integer": "BIGINT", "decimal": "DOUBLE"}.get(kind, "STRING")


@dataclass(frozen=True)
class Coll:
    """A FHIRPath collection: an SQL array of JSON elements."""

    sql: exp.Expr
    fhir_type: str | None = None
    r4: Field | None = None  # the R4 definition of the elements, when known (r4paths.py)
    # The collection's only element (JSON, NULL when empty) when R4 says it has at most one:
    # read as a singleton directly instead of taking the first of a one-element list.
    single: exp.Expr | None = None


@dataclass(frozen=True)
class Scalar:
    """A singleton (or empty = NULL) of a known kind."""

    sql: exp.Expr
    kind: str


Value = Coll | Scalar


@dataclass(frozen=True)
class Ctx:
    this: exp.Expr
    row_index: exp.Expr
    element: str
    type_hint: str | None = None
    r4: R4Node | None = None  # the R4 definition of ``this``, when known (r4paths.py)


@dataclass(frozen=True)
class CompiledView:
    """The SQL for one engine and the ordered output columns (name, kind, collection)."""

    sql: str
    columns: tuple[tuple[str, str, bool], ...]
    view: ViewDefinition = field(repr=False)
    # False when no element's text can be a JSON number's (every string read is a direct R4
    # string path): the engine may then skip the decimal-text pass at load (decimal_text.py).
    reads_number_text: bool = True


class _Compiler:
    def __init__(
        self, view: ViewDefinition, dialect: SqlDialect, max_depth: int, direct_paths: bool
    ) -> None:
        self.view = view
        self.direct_paths = direct_paths
        self.d = dialect
        self.max_depth = max_depth
        self._names: Iterator[int] = itertools.count(1)
        self.kinds: dict[str, str] = {}
        self.reads_number_text = False

    # ------------------------------------------------------------------ helpers
    def fresh(self, prefix: str = "v") -> str:
        return f"{prefix}{next(self._names)}"

    def coll(self, v: Value) -> exp.Expr:
        if isinstance(v, Coll):
            return v.sql
        return template(
            "CASE WHEN _s IS NULL THEN _empty ELSE array(_el) END",
            _s=v.sql,
            _empty=self.d.empty(),
            _el=self.d.to_element(v.sql),
        )

    def map_coll(self, c: exp.Expr, body: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
        var = self.fresh()
        return template(f"transform(_c, {var} -> _b)", _c=c, _b=body(exp.column(var)))

    def flat_map(self, c: exp.Expr, body: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
        return template("flatten(_m)", _m=self.map_coll(c, body))

    def filter_coll(self, c: exp.Expr, pred: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
        var = self.fresh()
        return template(f"filter(_c, {var} -> _p)", _c=c, _p=pred(exp.column(var)))

    def element_as(self, e: exp.Expr, kind: str, r4: Field | None = None) -> exp.Expr:
        if kind == "string" and r4 is not None and r4.kind in (Kind.STRING, Kind.DATE):
            return self.d.as_string(e)  # a JSON string in valid R4: never a number's text
        if kind == "boolean":
            return self.d.as_boolean(e)
        if kind == "integer":
            return self.d.as_bigint(e)
        if kind == "decimal":
            return self.d.as_double(e)
        return self.text(e)

    def text(self, e: exp.Expr) -> exp.Expr:
        """An element's string form. If it is a JSON number, that form is its source text only
        when the decimal-text pass ran at load (decimal_text.py): remember that it is needed."""
        self.reads_number_text = True
        return self.d.as_string(e)

    def scalar(self, v: Value, kind: str) -> exp.Expr:
        """The value as a singleton of ``kind`` (NULL when empty)."""
        if isinstance(v, Scalar):
            if v.kind == kind or (v.kind in _STRING_KINDS and kind in _STRING_KINDS):
                return v.sql
            return exp.cast(v.sql, sql_type(kind))
        if v.single is not None:
            r4 = v.r4
            if kind == "string" and r4 is not None and r4.kind in (Kind.STRING, Kind.DATE):
                text = self.d.single_string(v.single)
                if text is not None:
                    return text
            return self.element_as(v.single, kind, r4)
        return self.element_as(self.d.first(v.sql), kind, v.r4)

    def child_string(self, e: exp.Expr, key: str) -> exp.Expr:
        return self.d.as_string(self.d.first(self.d.children(e, key)))

    def boolean(self, v: Value, element: str) -> exp.Expr:
        """FHIRPath singleton evaluation to boolean; a non-boolean value is an error."""
        if isinstance(v, Scalar):
            if v.kind != "boolean":
                raise ViewDefinitionError(element, f"expression yields {v.kind}, not boolean")
            return v.sql
        first = self.d.first(v.sql)
        return template(
            "CASE WHEN size(_c) = 0 THEN CAST(NULL AS BOOLEAN) "
            "WHEN size(_c) = 1 AND _isbool THEN _bool ELSE _err END",
            _c=v.sql,
            _isbool=self.d.is_kind(first, "boolean"),
            _bool=self.d.as_boolean(first),
            _err=exp.cast(
                self.d.raise_error(f"{element}: expression must yield a single boolean"),
                "BOOLEAN",
            ),
        )

    # ------------------------------------------------------------------ FHIRPath
    def expr(self, node: Node, ctx: Ctx) -> Value:
        if isinstance(node, Literal):
            return self.literal(node)
        if isinstance(node, EmptyLiteral):
            return Coll(self.d.empty())
        if isinstance(node, This):
            return Coll(template("array(_t)", _t=ctx.this))
        if isinstance(node, Variable):
            return self.variable(node, ctx)
        if isinstance(node, Member):
            return self.member(node, ctx)
        if isinstance(node, Index):
            base = self.coll(self.expr(node.base, ctx))
            return Coll(self.d.slice(base, self.scalar(self.expr(node.index, ctx), "integer")))
        if isinstance(node, Call):
            return self.call(node, ctx)
        if isinstance(node, Unary):
            operand = self.scalar(self.expr(node.operand, ctx), "decimal")
            return Scalar(exp.Neg(this=operand) if node.op == "-" else operand, "decimal")
        return self.binary(node, ctx)

    def member(self, node: Member, ctx: Ctx) -> Value:
        """Navigation. Where the R4 definition of the focus is known, a member chain is one JSON
        path (r4paths.py: arrays only where R4 has them); else the generic child template."""
        names = member_names(node)
        if names is not None and ctx.r4 is not None:
            found = walk(ctx.r4, names)
            sql = None if found is None else self.d.json_path_elements(ctx.this, found[0])
            if found is not None and sql is not None:
                single = self.d.json_path_single(ctx.this, found[0])
                return Coll(sql, r4=found[1], single=single)
        if node.base is None:
            return Coll(self.d.children(ctx.this, node.name))
        base = self.expr(node.base, ctx)
        r4 = base.r4 if isinstance(base, Coll) else None
        found = walk(r4.node, [node.name]) if r4 is not None else None

        def child(e: exp.Expr) -> exp.Expr:
            direct = None if found is None else self.d.json_path_elements(e, found[0])
            return direct if direct is not None else self.d.children(e, node.name)

        return Coll(self.flat_map(self.coll(base), child), r4=found[1] if found else None)

    def literal(self, node: Literal) -> Scalar:
        if node.kind == "boolean":
            return Scalar(exp.Boolean(this=bool(node.value)), "boolean")
        if node.kind == "integer":
            return Scalar(exp.cast(exp.Literal.number(node.value), "BIGINT"), "integer")
        if node.kind == "decimal":
            return Scalar(exp.cast(exp.Literal.number(node.value), "DOUBLE"), "decimal")
        return Scalar(exp.Literal.string(str(node.value)), node.kind)

    def variable(self, node: Variable, ctx: Ctx) -> Value:
        if node.name == "rowIndex":
            return Scalar(ctx.row_index, "integer")
        if node.name in self.view.constants:
            return self.literal(self.view.constants[node.name])
        raise ViewDefinitionError(
            ctx.element, f"%{node.name} is not defined (declare it in ViewDefinition.constant)"
        )

    def binary(self, node: Binary, ctx: Ctx) -> Value:
        op = node.op
        left, right = self.expr(node.left, ctx), self.expr(node.right, ctx)
        if op in ("and", "or", "xor", "implies"):
            lb, rb = self.boolean(left, ctx.element), self.boolean(right, ctx.element)
            logic: dict[str, Callable[[], exp.Expr]] = {
                "and": lambda: exp.and_(lb, rb, wrap=True),
                "or": lambda: exp.or_(lb, rb, wrap=True),
                "xor": lambda: exp.NEQ(this=lb, expression=rb),
                "implies": lambda: exp.or_(exp.not_(lb), rb, wrap=True),
            }
            return Scalar(exp.Paren(this=logic[op]()), "boolean")
        if op == "|":
            return Coll(template("concat(_a, _b)", _a=self.coll(left), _b=self.coll(right)))
        if op == "&":
            la = exp.func("coalesce", self.scalar(left, "string"), exp.Literal.string(""))
            ra = exp.func("coalesce", self.scalar(right, "string"), exp.Literal.string(""))
            return Scalar(template("concat(_a, _b)", _a=la, _b=ra), "string")
        kind = self.operand_kind(left, right, op)
        a, b = self.scalar(left, kind), self.scalar(right, kind)
        comparisons: dict[str, type[exp.Expr]] = {
            "=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, ">": exp.GT, "<=": exp.LTE, ">=": exp.GTE,
            "~": exp.EQ, "!~": exp.NEQ,
        }  # fmt: skip
        if op in comparisons:
            return Scalar(exp.Paren(this=comparisons[op](this=a, expression=b)), "boolean")
        if op == "+" and kind == "string":
            return Scalar(template("concat(_a, _b)", _a=a, _b=b), "string")
        arithmetic: dict[str, type[exp.Expr]] = {
            "+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div, "mod": exp.Mod,
        }  # fmt: skip
        if op in arithmetic:
            fa, fb = exp.cast(a, "DOUBLE"), exp.cast(b, "DOUBLE")
            return Scalar(exp.Paren(this=arithmetic[op](this=fa, expression=fb)), "decimal")
        if op == "div":
            return Scalar(template("CAST(floor(_a / _b) AS BIGINT)", _a=a, _b=b), "integer")
        raise ViewDefinitionError(ctx.element, f"operator {op!r} is not supported")

    @staticmethod
    def operand_kind(left: Value, right: Value, op: str) -> str:
        kinds = [v.kind for v in (left, right) if isinstance(v, Scalar)]
        if any(k in _NUMBER_KINDS for k in kinds) or (
            not kinds and op not in ("=", "!=", "~", "!~")
        ):
            return "decimal"
        if "boolean" in kinds:
            return "boolean"
        return "string"

    # ------------------------------------------------------------------ functions
    def call(self, node: Call, ctx: Ctx) -> Value:
        name, args = node.name, node.args
        if name == "ofType" and len(args) == 1 and isinstance(args[0], Member):
            return self.of_type(node.base, args[0].name, ctx)
        if name == "getResourceKey" and node.base is None:
            return Scalar(self.resource_key(ctx.this), "string")
        base = (
            Coll(template("array(_t)", _t=ctx.this))
            if node.base is None
            else self.expr(node.base, ctx)
        )
        c = self.coll(base)
        r4 = base.r4 if isinstance(base, Coll) else None
        if name == "where" and len(args) == 1:
            inner = r4.node if r4 is not None else None
            return Coll(
                self.filter_coll(
                    c,
                    lambda e: exp.func(
                        "coalesce",
                        self.boolean(
                            self.expr(args[0], replace(ctx, this=e, r4=inner)), ctx.element
                        ),
                        exp.false(),
                    ),
                ),
                r4=r4,
            )
        if name == "exists":
            target = c if not args else self.coll(self.call(Call(node.base, "where", args), ctx))
            return Scalar(template("size(_c) > 0", _c=target), "boolean")
        if name == "empty" and not args:
            return Scalar(template("size(_c) = 0", _c=c), "boolean")
        if name == "count" and not args:
            return Scalar(template("CAST(size(_c) AS BIGINT)", _c=c), "integer")
        if name == "first" and not args:
            if isinstance(base, Scalar):
                return base  # already a singleton (or empty): binding it twice doubled the SQL
            return Coll(
                self.d.slice(c, exp.Literal.number(0)), getattr(base, "fhir_type", None), r4
            )
        if name == "last" and not args:
            return Coll(self.d.last(c), r4=r4)
        if name == "not" and not args:
            return Scalar(exp.Paren(this=exp.not_(self.boolean(base, ctx.element))), "boolean")
        if name == "join" and len(args) <= 1:
            sep = self.scalar(self.expr(args[0], ctx), "string") if args else exp.Literal.string("")
            strings = self.map_coll(c, lambda e: self.element_as(e, "string", r4))
            return Scalar(template("array_join(_s, _sep)", _s=strings, _sep=sep), "string")
        if name == "extension" and len(args) == 1:
            url = self.scalar(self.expr(args[0], ctx), "string")
            exts = self.flat_map(c, lambda e: self.d.children(e, "extension"))
            return Coll(
                self.filter_coll(
                    exts,
                    lambda e: exp.func(
                        "coalesce",
                        exp.EQ(this=self.child_string(e, "url"), expression=url),
                        exp.false(),
                    ),
                )
            )
        if name == "getResourceKey" and not args:
            return Scalar(self.resource_key(self.d.first(c)), "string")
        if name == "getReferenceKey" and len(args) <= 1:
            return Scalar(self.reference_key(c, args, ctx), "string")
        if name in ("lowBoundary", "highBoundary") and not args:
            return self.boundary(base, name == "lowBoundary", ctx)
        if name == "ofType" and len(args) == 1:
            raise ViewDefinitionError(ctx.element, "ofType() takes a type name")
        raise ViewDefinitionError(
            ctx.element, f"FHIRPath function {name}() with {len(args)} argument(s) is not supported"
        )

    def of_type(self, base: Node | None, type_name: str, ctx: Ctx) -> Value:
        """``x.ofType(T)``; on a choice element ``value`` it reads ``valueT`` (FHIR JSON §2.6.2)."""
        if isinstance(base, Member):
            choice = base.name + type_name[0].upper() + type_name[1:]
            value = self.expr(Member(base.base, choice), ctx)
            assert isinstance(value, Coll)
            return Coll(value.sql, type_name)
        c = self.coll(self.expr(base if base is not None else This(), ctx))
        if type_name in _STRING_PRIMITIVES:
            return Coll(self.filter_coll(c, lambda e: self.d.is_kind(e, "string")), type_name)
        if type_name in ("integer", "decimal", "boolean"):
            return Coll(self.filter_coll(c, lambda e: self.d.is_kind(e, type_name)), type_name)
        return Coll(
            self.filter_coll(
                c,
                lambda e: exp.func(
                    "coalesce",
                    exp.EQ(
                        this=self.child_string(e, "resourceType"),
                        expression=exp.Literal.string(type_name),
                    ),
                    exp.false(),
                ),
            ),
            type_name,
        )

    def resource_key(self, e: exp.Expr) -> exp.Expr:
        """``getResourceKey()``: ``Type/id``, the same form ``getReferenceKey()`` extracts."""
        return template(
            "concat(_t, '/', _i)",
            _t=self.child_string(e, "resourceType"),
            _i=self.child_string(e, "id"),
        )

    def reference_key(self, c: exp.Expr, args: tuple[Node, ...], ctx: Ctx) -> exp.Expr:
        return self.reference_key_of(self.child_string(self.d.first(c), "reference"), args, ctx)

    def reference_key_of(self, ref: exp.Expr, args: tuple[Node, ...], ctx: Ctx) -> exp.Expr:
        """The key in reference string ``ref``. Relative or absolute literal references end in
        Type/id, optionally /_history/vid (FHIR R4 §2.3.0 "Literal references")."""
        if not args:
            return template(
                "nullif(regexp_extract(_r, "
                "'([A-Za-z]+/[A-Za-z0-9.-]+)(/_history/[A-Za-z0-9.-]+)?$', 1), '')",
                _r=ref,
            )
        if not isinstance(args[0], Member) or args[0].base is not None:
            raise ViewDefinitionError(ctx.element, "getReferenceKey() takes a resource type name")
        if not args[0].name.isalpha():
            raise ViewDefinitionError(ctx.element, "getReferenceKey() takes a resource type name")
        # The type in the pattern: one regex per row (the last Type/id segment must be this
        # type, so it starts the string or follows a '/').
        pattern = f"(?:^|/)({args[0].name}/[A-Za-z0-9.-]+)(?:/_history/[A-Za-z0-9.-]+)?$"
        return template(
            "nullif(regexp_extract(_r, _p, 1), '')", _r=ref, _p=exp.Literal.string(pattern)
        )

    def boundary(self, base: Value, low: bool, ctx: Ctx) -> Value:
        """lowBoundary()/highBoundary() (FHIRPath N2 §5.7) on the FHIR JSON text of the value."""
        self.reads_number_text = True  # boundaries depend on a decimal's written precision
        fhir_type = base.fhir_type if isinstance(base, Coll) else None
        fhir_type = fhir_type or ctx.type_hint
        text = self.scalar(base, "string")
        if fhir_type in ("decimal", "Quantity", None) and isinstance(base, Coll):
            number = self.d.first(base.sql)
            return Scalar(self.decimal_boundary(number, text, low), "decimal")
        if fhir_type == "time":
            suffix = (":00.000", ".000") if low else (":59.999", ".999")
            sql = template(
                "CASE WHEN length(_s) = 5 THEN concat(_s, _a) WHEN length(_s) = 8 "
                "THEN concat(_s, _b) ELSE _s END",
                _s=text,
                _a=exp.Literal.string(suffix[0]),
                _b=exp.Literal.string(suffix[1]),
            )
            return Scalar(sql, "time")
        date = self.date_boundary(text, low)
        if fhir_type == "date":
            return Scalar(date, "date")
        # dateTime/instant: a date-only value spans every time zone (+14:00 … -12:00).
        tail = "T00:00:00.000+14:00" if low else "T23:59:59.999-12:00"
        sql = template(
            "CASE WHEN length(_s) <= 10 THEN concat(_d, _tail) ELSE _s END",
            _s=text,
            _d=date,
            _tail=exp.Literal.string(tail),
        )
        return Scalar(sql, "datetime")

    def decimal_boundary(self, number: exp.Expr, text: exp.Expr, low: bool) -> exp.Expr:
        sign = "-" if low else "+"
        return template(
            "CASE WHEN _t IS NULL OR NOT _isnum THEN CAST(NULL AS DOUBLE) ELSE "
            f"CAST(_t AS DOUBLE) {sign} 0.5 * power(10, -(CASE WHEN instr(_t, '.') > 0 "
            "THEN length(_t) - instr(_t, '.') ELSE 0 END)) END",
            _t=text,
            _isnum=self.d.is_kind(number, "decimal"),
        )

    @staticmethod
    def date_boundary(text: exp.Expr, low: bool) -> exp.Expr:
        if low:
            return template(
                "CASE WHEN length(_s) = 4 THEN concat(_s, '-01-01') WHEN length(_s) = 7 "
                "THEN concat(_s, '-01') ELSE substring(_s, 1, 10) END",
                _s=text,
            )
        return template(
            "CASE WHEN length(_s) = 4 THEN concat(_s, '-12-31') WHEN length(_s) = 7 "
            "THEN CAST(last_day(CAST(concat(_s, '-01') AS DATE)) AS STRING) "
            "ELSE substring(_s, 1, 10) END",
            _s=text,
        )

    # ------------------------------------------------------------------ selects
    def direct_column(self, col: Column, ctx: Ctx) -> exp.Expr | None:
        """A typed column on the resource root read by one JSON path (r4paths.py), or None.

        Covers ``a.b.c`` (no array step: at most one value), ``a.b.c.first()`` (first of the
        flattened values) and ``a.b.getReferenceKey(T)`` (the reference of the first ``a.b``;
        only when no step before the last is an array, so "first" means the same). Anything
        else, and engines without JSON paths, use the generic collection SQL.
        """
        kind = column_kind(col.type)
        this = ctx.this
        if col.collection or not (isinstance(this, exp.Column) and this.name == "resource"):
            return None
        path: Node | None = col.path
        first = False
        if isinstance(path, Call) and path.name == "first" and not path.args:
            path, first = path.base, True
        if isinstance(path, Call) and path.name == "getReferenceKey" and len(path.args) <= 1:
            names = member_names(path.base)
            jp = None if names is None else resolve(self.view.resource, [*names, "reference"])
            if jp is None or kind != "string" or any(a for _, a in jp.steps[:-2]):
                return None
            steps = [(n, "[0]" if a else "") for n, a in jp.steps]
            ref = self.d.json_path_text(this, steps)
            if ref is None:
                return None
            col_ctx = replace(ctx, element=f"{col.element}.path")
            return self.reference_key_of(ref, path.args, col_ctx)
        names = member_names(path)
        jp = None if names is None else resolve(self.view.resource, names)
        if jp is None or _LEAF_KINDS[jp.leaf] != kind or (jp.arrays and not first):
            return None
        text = self.d.json_path_text(this, [(n, "[*]" if a else "") for n, a in jp.steps])
        if text is None:
            return None
        return self.d.text_as(self.d.first(text) if jp.arrays else text, kind)

    def column_value(self, col: Column, ctx: Ctx) -> exp.Expr:
        direct = self.direct_column(col, ctx) if col.type and self.direct_paths else None
        if direct is not None:
            self.kinds[col.element] = column_kind(col.type)
            return exp.cast(direct, sql_type(self.kinds[col.element]))
        col_ctx = replace(ctx, element=f"{col.element}.path", type_hint=col.type)
        value = self.expr(col.path, col_ctx)
        kind = column_kind(col.type) if col.type else getattr(value, "kind", "string")
        kind = kind if kind in ("boolean", "integer", "decimal") else "string"
        self.kinds[col.element] = kind
        if col.collection:
            if isinstance(value, Scalar):
                return template(
                    "CASE WHEN _s IS NULL THEN CAST(array() AS _T) ELSE array(_s) END",
                    _s=exp.cast(value.sql, sql_type(kind)),
                    _T=exp.DataType.build(f"ARRAY<{sql_type(kind)}>", dialect="spark"),
                )
            return self.map_coll(value.sql, lambda e: self.element_as(e, kind, value.r4))
        if isinstance(value, Scalar):
            return exp.cast(self.scalar(value, kind), sql_type(kind))
        message = (
            f"{col.element}.path: {col.name!r} returned more than one value; "
            "use first() or set collection: true"
        )
        # Bind the collection once (a one-element transform): it is used twice.
        var = exp.column(self.fresh())
        body = template(
            "CASE WHEN size(_c) > 1 THEN _err ELSE _v END",
            _c=var,
            _err=exp.cast(self.d.raise_error(message), sql_type(kind)),
            _v=exp.cast(self.element_as(self.d.first(var), kind, value.r4), sql_type(kind)),
        )
        bound = template(f"transform(array(_c), {var.name} -> _b)", _c=value.sql, _b=body)
        return self.d.first(bound)

    def column_types(self, sel: Select) -> list[tuple[str, str]]:
        out = []
        for col in sel.all_columns():
            t = sql_type(self.kinds[col.element])
            out.append((col.name, f"ARRAY<{t}>" if col.collection else t))
        return out

    def struct(self, fields: Sequence[tuple[str, exp.Expr]]) -> exp.Expr:
        args: list[exp.Expr] = []
        for name, value in fields:
            args.extend([exp.Literal.string(name), value])
        return exp.func("named_struct", *args, dialect="spark")

    def rows(self, sel: Select, ctx: Ctx) -> exp.Expr:
        """An array of row structs for ``sel`` evaluated on the context element."""
        iterated = self.iteration(sel, ctx)
        if iterated is None:
            return self.rows_body(sel, ctx)
        iterator, r4 = iterated.sql, iterated.r4
        var, index_var = self.fresh(), self.fresh("i")
        inner_ctx = Ctx(
            exp.column(var),
            self.d.index_value(index_var),
            sel.element,
            r4=r4.node if r4 is not None else None,
        )
        body = self.rows_body(sel, inner_ctx)
        result = template(
            "flatten(_m)", _m=self.d.transform_indexed(iterator, var, index_var, body)
        )
        if sel.for_each_or_null is not None:
            # The null row still has %rowIndex 0 (SQL on FHIR v2, "%rowIndex").
            zero_index = {c.name for c in sel.columns if c.path == Variable("rowIndex")}
            nulls = self.struct(
                [
                    (n, exp.cast(exp.Literal.number(0) if n in zero_index else exp.null(), t))
                    for n, t in self.column_types(sel)
                ]
            )
            result = template(
                "CASE WHEN size(_c) = 0 THEN array(_n) ELSE _r END",
                _c=iterator,
                _n=nulls,
                _r=result,
            )
        return result

    def iteration(self, sel: Select, ctx: Ctx) -> Coll | None:
        path, element = sel.for_each, f"{sel.element}.forEach"
        if sel.for_each_or_null is not None:
            path, element = sel.for_each_or_null, f"{sel.element}.forEachOrNull"
        if path is not None:
            value = self.expr(path, replace(ctx, element=element))
            return value if isinstance(value, Coll) else Coll(self.coll(value))
        if sel.repeat:
            return Coll(self.repeat(sel, ctx))
        return None

    def repeat(self, sel: Select, ctx: Ctx) -> exp.Expr:
        """All nodes reachable through the repeat paths, depth first, pre-order.

        SQL arrays have no recursion, so the descent is unrolled ``max_depth`` levels; deeper
        nodes are not visited (documented in docs/analytics.md).
        """
        element = f"{sel.element}.repeat"

        def step(e: exp.Expr) -> exp.Expr:
            parts = [self.coll(self.expr(p, Ctx(e, ctx.row_index, element))) for p in sel.repeat]
            return (
                parts[0]
                if len(parts) == 1
                else template_map(
                    "concat(" + ", ".join(f"_p{i}" for i in range(len(parts))) + ")",
                    {f"_p{i}": p for i, p in enumerate(parts)},
                )
            )

        def descend(e: exp.Expr, depth: int) -> exp.Expr:
            if depth == 0:
                return self.d.empty()
            return self.flat_map(
                step(e),
                lambda child: template(
                    "concat(array(_x), _rest)", _x=child, _rest=descend(child, depth - 1)
                ),
            )

        return descend(ctx.this, self.max_depth)

    def rows_body(self, sel: Select, ctx: Ctx) -> exp.Expr:
        parts: list[tuple[exp.Expr, list[str]]] = []
        if sel.columns:
            fields = [(c.name, self.column_value(c, ctx)) for c in sel.columns]
            parts.append(
                (template("array(_s)", _s=self.struct(fields)), [c.name for c in sel.columns])
            )
        for sub in sel.selects:
            parts.append((self.rows(sub, ctx), sub.column_names()))
        if sel.union_all:
            branches = [self.rows(b, ctx) for b in sel.union_all]
            placeholders = {f"_b{i}": b for i, b in enumerate(branches)}
            union = template_map(f"concat({', '.join(placeholders)})", placeholders)
            parts.append((union, sel.union_all[0].column_names()))
        if not parts:
            raise ViewDefinitionError(sel.element, "needs a column, select or unionAll")
        rows, names = parts[0]
        for other, other_names in parts[1:]:
            rows, names = self.cross(rows, names, other, other_names), names + other_names
        return rows

    def cross(self, a: exp.Expr, a_names: list[str], b: exp.Expr, b_names: list[str]) -> exp.Expr:
        va, vb = self.fresh("r"), self.fresh("r")
        fields = [(n, exp.column(n, table=va)) for n in a_names]
        fields += [(n, exp.column(n, table=vb)) for n in b_names]
        inner = template(f"transform(_b, {vb} -> _s)", _b=b, _s=self.struct(fields))
        return template(f"flatten(transform(_a, {va} -> _i))", _a=a, _i=inner)

    # ------------------------------------------------------------------ query
    def query(self, table: str) -> exp.Expr:
        root = Ctx(
            exp.column("resource"),
            exp.cast(exp.Literal.number(0), "BIGINT"),
            "select",
            r4=resource_node(self.view.resource) if self.direct_paths else None,
        )
        selects = [self.rows(s, replace(root, element=s.element)) for s in self.view.select]
        names = [s.column_names() for s in self.view.select]
        rows, all_names = selects[0], names[0]
        for other, other_names in zip(selects[1:], names[1:], strict=True):
            rows, all_names = (
                self.cross(rows, all_names, other, other_names),
                all_names + other_names,
            )
        conditions: list[exp.Expr] = [
            exp.EQ(
                this=exp.column("resource_type"), expression=exp.Literal.string(self.view.resource)
            )
        ]
        for w in self.view.where:
            value = self.expr(w.path, replace(root, element=w.element))
            conditions.append(exp.func("coalesce", self.boolean(value, w.element), exp.false()))
        source, (rows, *conditions) = self.d.scan(table, self.view.resource, [rows, *conditions])
        inner = (
            exp.select(exp.alias_(exp.func("explode", rows, dialect="spark"), "_row"))
            .from_(source)
            .where(exp.and_(*conditions))
        )
        outer = exp.select(
            *[exp.alias_(exp.column(n, table="_row"), n, quoted=True) for n in all_names]
        )
        return outer.from_(inner.subquery("_rows"))


def compile_view(
    view: Mapping[str, object] | ViewDefinition,
    dialect: str,
    *,
    table: str = RESOURCE_TABLE,
    max_depth: int = 8,
    direct_paths: bool = True,
) -> CompiledView:
    """Validate ``view`` and compile it to SQL for ``dialect`` ("duckdb" or "spark").

    The query reads ``table(resource_type, id, resource)`` and returns one column per
    ViewDefinition column, in the order the specification fixes. ``direct_paths=False`` keeps
    every column on the generic collection SQL (tests compare the two).
    """
    vd = view if isinstance(view, ViewDefinition) else validate_view(view)
    compiler = _Compiler(vd, DIALECTS[dialect], max_depth, direct_paths)
    tree = compiler.query(table)
    columns = tuple((c.name, compiler.kinds[c.element], bool(c.collection)) for c in vd.columns())
    return CompiledView(tree.sql(dialect=dialect), columns, vd, compiler.reads_number_text)
