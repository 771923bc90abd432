"""Errors raised by the analytics layer, each naming the ViewDefinition element and the rule."""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base class: a message a person can act on."""


class ViewDefinitionError(AnalyticsError):
    """A ViewDefinition breaks a rule of SQL on FHIR v2.

    ``element`` is the path inside the ViewDefinition (``select[1].column[0].path``) so the author
    can find the offending element; ``rule`` says what the specification requires there.
    """

    def __init__(self, element: str, rule: str) -> None:
        self.element = element
        self.rule = rule
        super().__init__(f"{element}: {rule}")


class ViewExecutionError(AnalyticsError):
    """An engine rejected a compiled view or a query (the engine's own message is kept)."""
