"""Parser for the FHIRPath subset that SQL on FHIR v2 requires.

The grammar and operator precedence follow the FHIRPath N1 specification
(https://hl7.org/fhirpath/N1/#operator-precedence); the required subset is listed in
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#required-fhirpath-expressionsfunctions.
The parser only builds a syntax tree: compilation to SQL lives in ``compiler.py`` so that the
same tree can be checked (undefined constants, unknown functions) before any engine runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yilian.analytics.errors import ViewDefinitionError


@dataclass(frozen=True)
class Literal:
    """A literal; ``kind`` is one of string, integer, decimal, boolean, date, datetime, time."""

    value: object
    kind: str


@dataclass(frozen=True)
class EmptyLiteral:
    """The empty collection ``{}``."""


@dataclass(frozen=True)
class This:
    """``$this``: the current focus."""


@dataclass(frozen=True)
class Member:
    """Navigation to a child element named ``name`` of ``base`` (``None`` = the focus)."""

    base: Node | None
    name: str


@dataclass(frozen=True)
class Call:
    """A function invocation on ``base`` (``None`` = the focus)."""

    base: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index:
    base: Node
    index: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Variable:
    """An environment variable ``%name`` (view constants, ``%rowIndex``)."""

    name: str


Node = Literal | EmptyLiteral | This | Member | Call | Index | Binary | Unary | Variable

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<date>@T?\d[\d\-:T.+Z]*)
  | (?P<number>\d+(\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<var>%(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`|'[^']*'))
  | (?P<special>\$(?:this|index|total))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)
  | (?P<op><=|>=|!=|!~|[-+*/&|<>=~().,\[\]{}])
    """,
    re.VERBOSE,
)

# Precedence levels, lowest first (FHIRPath N1 §"Operator precedence").
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("implies",),
    ("or", "xor"),
    ("and",),
    ("in", "contains"),
    ("=", "~", "!=", "!~"),
    ("<", ">", "<=", ">="),
    ("|",),
    ("+", "-", "&"),
    ("*", "/", "div", "mod"),
)
_WORD_OPERATORS = {"implies", "or", "xor", "and", "in", "contains", "div", "mod"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str, element: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ViewDefinitionError(
                element, f"FHIRPath syntax: unexpected character {text[pos]!r} at offset {pos}"
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, element: str) -> None:
        self.text = text
        self.element = element
        self.tokens = _tokenize(text, element)
        self.i = 0

    def error(self, what: str) -> ViewDefinitionError:
        return ViewDefinitionError(self.element, f"FHIRPath syntax: {what} in {self.text!r}")

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.text == text and tok.kind in ("op", "ident"):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            tok = self.peek()
            raise self.error(f"expected {text!r}, found {tok.text if tok else 'end'!r}")

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("empty expression")
        node = self.binary(0)
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            tok = self.peek()
            if tok is None or tok.text not in _BINARY_LEVELS[level]:
                return left
            if tok.kind == "ident" and tok.text not in _WORD_OPERATORS:
                return left
            self.i += 1
            left = Binary(tok.text, left, self.binary(level + 1))

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in ("-", "+"):
            self.i += 1
            return Unary(tok.text, self.unary())
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.accept("."):
                node = self.invocation(node)
            elif self.accept("["):
                index = self.binary(0)
                self.expect("]")
                node = Index(node, index)
            else:
                return node

    def invocation(self, base: Node | None) -> Node:
        tok = self.peek()
        if tok is None or tok.kind != "ident":
            raise self.error("expected an element or function name")
        self.i += 1
        name = tok.text.strip("`")
        if self.accept("("):
            args: list[Node] = []
            if not self.accept(")"):
                args.append(self.binary(0))
                while self.accept(","):
                    args.append(self.binary(0))
                self.expect(")")
            return Call(base, name, tuple(args))
        return Member(base, name)

    def term(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of expression")
        if tok.kind == "op" and tok.text == "(":
            self.i += 1
            node = self.binary(0)
            self.expect(")")
            return node
        if tok.kind == "op" and tok.text == "{":
            self.i += 1
            self.expect("}")
            return EmptyLiteral()
        self.i += 1
        if tok.kind == "string":
            return Literal(_unescape(tok.text[1:-1]), "string")
        if tok.kind == "number":
            if "." in tok.text:
                return Literal(tok.text, "decimal")
            return Literal(int(tok.text), "integer")
        if tok.kind == "date":
            body = tok.text[1:]
            kind = "time" if body.startswith("T") else ("datetime" if "T" in body else "date")
            return Literal(body.lstrip("T"), kind)
        if tok.kind == "var":
            return Variable(tok.text[1:].strip("`'"))
        if tok.kind == "special":
            if tok.text == "$this":
                return This()
            raise self.error(f"{tok.text} is not supported")
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return Literal(tok.text == "true", "boolean")
            self.i -= 1
            return self.invocation(None)
        raise self.error(f"unexpected {tok.text!r}")


def _unescape(body: str) -> str:
    escapes = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), body)


def parse(text: str, element: str) -> Node:
    """Parse ``text``; errors name ``element`` (e.g. ``select[0].column[1].path``)."""
    return _Parser(text, element).parse()
