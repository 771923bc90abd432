"""A compiled evaluator for the FHIRPath subset that R4 search-parameter expressions use.

fhirpathpy interprets the full language but costs tens of microseconds per expression; indexing
needs a few microseconds. Search expressions are nearly all of one shape — dotted paths joined by
``|``, narrowed by type or by a simple ``where`` — so each is compiled once into *branches*: a
chain of steps over the JSON plus the static FHIR type of what the chain yields. The static type
(HumanName vs string, Period vs dateTime) comes from the R4 model (``fhirtypes``), and a choice
element ``value[x]`` becomes one branch per type (``valueQuantity``, ``valueCodeableConcept``…).

Supported (anything else raises ``Unsupported`` and the caller falls back to fhirpathpy):

- ``A.b.c`` and ``A.b | A.c``; ``x[n]``;
- ``(X as T)``, ``X.as(T)``, ``X.ofType(T)`` — keep the branches whose type is (a subtype of) T;
- ``X.where(resolve() is T)`` — references whose literal reference names type T
  (``T/id``, ``T/id/_history/v`` or an absolute ``…/T/id``); contained (``#x``), identifier-only
  and ``urn:`` references cannot be resolved and are dropped, as FHIRPath drops what ``resolve()``
  cannot find;
- ``X.where(f = 'literal')`` and ``X.extension('url')``;
- ``X.exists() and X != false`` (Patient.deceased) — a single boolean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yilian.fhir.searchparams import fhirtypes
from yilian.fhir.searchparams.fhirtypes import BACKBONE

Nodes = list[Any]
Step = Callable[[Nodes], Nodes]


class Unsupported(ValueError):
    """The expression uses FHIRPath beyond the compiled subset."""


@dataclass(frozen=True)
class Branch:
    """One typed way an expression yields values: JSON keys/filters from the resource root.

    ``keys`` is the leading run of plain field steps (the hot path); ``steps`` run after them.
    """

    keys: tuple[str, ...]
    steps: tuple[Step, ...]
    fhir_type: str


@dataclass(frozen=True)
class Compiled:
    branches: tuple[Branch, ...]
    exists_not_false: bool = False  # the ``X.exists() and X != false`` form


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
    r"|(?P<op>!=|[.()|\[\]=]))"
)


def _tokens(expression: str) -> list[str]:
    out: list[str] = []
    position = 0
    text = expression.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise Unsupported(f"cannot read {text[position:]!r}")
        out.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return out


# ---------------------------------------------------------------- runtime steps


def field_step(key: str) -> Step:
    def step(nodes: Nodes) -> Nodes:
        out: Nodes = []
        for node in nodes:
            if type(node) is dict:
                value = node.get(key)
                if value is None:
                    continue
                if type(value) is list:
                    out.extend(item for item in value if item is not None)
                else:
                    out.append(value)
        return out

    return step


def _index_step(index: int) -> Step:
    def step(nodes: Nodes) -> Nodes:
        return nodes[index : index + 1]

    return step


def _equals_step(key: str, literal: str) -> Step:
    def step(nodes: Nodes) -> Nodes:
        return [n for n in nodes if type(n) is dict and n.get(key) == literal]

    return step


_ABSOLUTE = re.compile(r"(?:.*/)?([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?")


def reference_type(reference: str) -> str | None:
    """The resource type a literal reference names, or None (contained, urn:, malformed)."""
    if reference.startswith(("#", "urn:")):
        return None
    match = _ABSOLUTE.fullmatch(reference)
    if match is None or not fhirtypes.is_resource_type(match.group(1)):
        return None
    return match.group(1)


def _resolve_is_step(target: str) -> Step:
    def step(nodes: Nodes) -> Nodes:
        out: Nodes = []
        for node in nodes:
            if type(node) is dict:
                reference = node.get("reference")
                if type(reference) is str and reference_type(reference) == target:
                    out.append(node)
        return out

    return step


# ---------------------------------------------------------------- parser/compiler


@dataclass
class _Partial:
    keys: list[str]
    steps: list[Step]
    fhir_type: str
    model_path: str

    def add(self, step: Step, fhir_type: str, model_path: str) -> _Partial:
        return _Partial(self.keys, [*self.steps, step], fhir_type, model_path)


class _Parser:
    def __init__(self, expression: str, resource_type: str) -> None:
        self.tokens = _tokens(expression)
        self.position = 0
        self.resource_type = resource_type

    def peek(self, offset: int = 0) -> str | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise Unsupported(f"expected {expected or 'more'} at token {self.position}")
        self.position += 1
        return token

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    # union := term ('|' term)*
    def union(self) -> list[_Partial]:
        branches = self.term()
        while self.peek() == "|":
            self.take("|")
            branches = branches + self.term()
        return branches

    # term := primary ('.' invocation | '[' n ']')*
    def term(self) -> list[_Partial]:
        branches = self.primary()
        while self.peek() in (".", "["):
            if self.take() == "[":
                index = int(self.take())
                self.take("]")
                branches = [b.add(_index_step(index), b.fhir_type, b.model_path) for b in branches]
            else:
                branches = self.invocation(branches)
        return branches

    def primary(self) -> list[_Partial]:
        if self.peek() == "(":
            self.take("(")
            branches = self.union()
            if self.peek() == "as":
                self.take("as")
                branches = _narrow(branches, self.take())
            self.take(")")
            return branches
        name = self.take()
        if name != self.resource_type:
            raise Unsupported(f"path does not start at {self.resource_type}: {name}")
        return [_Partial([], [], name, name)]

    def invocation(self, branches: list[_Partial]) -> list[_Partial]:
        name = self.take()
        if self.peek() != "(":
            return _field(branches, name)
        self.take("(")
        if name in ("as", "ofType"):
            result = _narrow(branches, self.take())
        elif name == "where":
            result = self.where(branches)
        elif name == "extension":
            url = _literal(self.take())
            extensions = _field(branches, "extension")
            result = [
                b.add(_equals_step("url", url), b.fhir_type, b.model_path) for b in extensions
            ]
        else:
            raise Unsupported(f"function {name}()")
        self.take(")")
        return result

    def where(self, branches: list[_Partial]) -> list[_Partial]:
        if self.peek() == "resolve":
            self.take("resolve")
            self.take("(")
            self.take(")")
            self.take("is")
            target = self.take()
            return [
                b.add(_resolve_is_step(target), b.fhir_type, b.model_path)
                for b in branches
                if b.fhir_type == "Reference"
            ]
        key = self.take()
        self.take("=")
        literal = _literal(self.take())
        return [b.add(_equals_step(key, literal), b.fhir_type, b.model_path) for b in branches]


def _literal(token: str) -> str:
    if len(token) < 2 or token[0] != "'" or token[-1] != "'":
        raise Unsupported(f"expected a string literal, got {token}")
    return token[1:-1]


def _field(branches: list[_Partial], name: str) -> list[_Partial]:
    out: list[_Partial] = []
    for branch in branches:
        if branch.fhir_type in fhirtypes.PRIMITIVES:
            continue  # FHIRPath: primitives have no children (except id/extension)
        types = fhirtypes.element_types(branch.model_path, name)
        if types is None:
            raise Unsupported(f"{branch.model_path} has no element {name}")
        for element in types:
            if branch.steps:
                step = field_step(element.json_key)
                out.append(branch.add(step, element.fhir_type, element.model_path))
            else:
                keys = [*branch.keys, element.json_key]
                out.append(_Partial(keys, [], element.fhir_type, element.model_path))
    return out


def _narrow(branches: list[_Partial], type_token: str) -> list[_Partial]:
    wanted = type_token.split(".")[-1]  # FHIR.Quantity → Quantity
    return [b for b in branches if b.fhir_type != BACKBONE and fhirtypes.is_a(b.fhir_type, wanted)]


def _exists_not_false(parser: _Parser, expression: str) -> Compiled | None:
    """``X.exists() and X != false``: split it by hand, it is the only boolean form in R4."""
    match = re.fullmatch(r"\s*(.+?)\.exists\(\)\s+and\s+(.+?)\s*!=\s*false\s*", expression)
    if match is None or match.group(1).strip() != match.group(2).strip():
        return None
    inner = compile_expression(match.group(1), parser.resource_type)
    return Compiled(inner.branches, exists_not_false=True)


def compile_expression(expression: str, resource_type: str) -> Compiled:
    """Compile a search expression rooted at ``resource_type``; raises ``Unsupported``."""
    parser = _Parser(expression, resource_type)
    if "and" in parser.tokens:
        special = _exists_not_false(parser, expression)
        if special is None:
            raise Unsupported("boolean expression")
        return special
    partials = parser.union()
    if not parser.done():
        raise Unsupported(f"unexpected {parser.peek()!r}")
    return Compiled(tuple(Branch(tuple(p.keys), tuple(p.steps), p.fhir_type) for p in partials))


def evaluate_branch(branch: Branch, resource: dict[str, Any]) -> Nodes:
    """All values one branch yields for a resource (primitive nulls of ``_x`` arrays dropped)."""
    nodes: Nodes = [resource]
    for key in branch.keys:
        out: Nodes = []
        for node in nodes:
            if type(node) is dict:
                value = node.get(key)
                if value is None:
                    continue
                if type(value) is list:
                    out.extend(item for item in value if item is not None)
                else:
                    out.append(value)
        if not out:
            return out
        nodes = out
    for step in branch.steps:
        nodes = step(nodes)
        if not nodes:
            break
    return nodes


def evaluate(compiled: Compiled, resource: dict[str, Any]) -> list[tuple[Any, str]]:
    """(value, FHIR type) pairs of a compiled expression over a resource."""
    pairs = [(v, b.fhir_type) for b in compiled.branches for v in evaluate_branch(b, resource)]
    if compiled.exists_not_false:
        if not pairs:
            return [(False, "boolean")]
        return [(not (len(pairs) == 1 and pairs[0][0] is False), "boolean")]
    return pairs
