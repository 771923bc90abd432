"""Parser unit tests: typed objects out, errors that name the parameter and the rule."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.fhir.errors import FhirError
from yilian.fhir.search.params import (
    Chain,
    Criterion,
    Include,
    ReverseChain,
    SortKey,
    Summary,
    Total,
    parse_search,
)
from yilian.fhir.search.values import (
    DateValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    TextValue,
    TokenValue,
    parse_date,
    parse_number,
    split_escaped,
)

BASE = "http://example.org/fhir"


def parse(res_type: str | None, query: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return parse_search(res_type, query, base_url=BASE)


def error_of(res_type: str | None, query: list[tuple[str, str]]) -> dict[str, object]:
    with pytest.raises(FhirError) as caught:
        parse(res_type, query)
    assert caught.value.status == 400
    issue = caught.value.outcome()["issue"][0]
    assert isinstance(issue, dict)
    return issue


def test_token_forms() -> None:
    parsed = parse("Patient", [("identifier", "urn:s|1,|2,3,urn:s|")])
    criterion = parsed.filters[0]
    assert isinstance(criterion, Criterion)
    assert criterion.values == (
        TokenValue("urn:s", "1"),
        TokenValue(None, "2", no_system=True),
        TokenValue(None, "3"),
        TokenValue("urn:s", None),
    )


def test_escaped_comma_and_pipe_stay_in_the_value() -> None:
    criterion = parse("Patient", [("identifier", r"urn:s|a\,b\|c")]).filters[0]
    assert isinstance(criterion, Criterion)
    assert criterion.values == (TokenValue("urn:s", "a,b|c"),)
    assert split_escaped(r"a\,b,c", ",") == [r"a\,b", "c"]


def test_string_values_are_normalised_like_the_index() -> None:
    criterion = parse("Patient", [("name", "MÜLLER")]).filters[0]
    assert isinstance(criterion, Criterion)
    assert criterion.values == (TextValue("muller"),)
    exact = parse("Patient", [("name:exact", "MÜLLER")]).filters[0]
    assert isinstance(exact, Criterion)
    assert exact.values == (TextValue("MÜLLER"),)


def test_date_prefix_and_range() -> None:
    criterion = parse("Observation", [("date", "ge2024-05")]).filters[0]
    assert isinstance(criterion, Criterion)
    assert criterion.values == (DateValue(Prefix.GE, datetime(2024, 5, 1), datetime(2024, 6, 1)),)


def test_date_with_offset_is_converted_to_utc() -> None:
    value = parse_date("2024-05-01T10:00:00+08:00")
    assert value.low == datetime(2024, 5, 1, 2, 0, 0)
    assert value.high == datetime(2024, 5, 1, 2, 0, 1)


@given(
    prefix=st.sampled_from([p.value for p in Prefix if p is not Prefix.AP] + [""]),
    year=st.integers(1900, 2100),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    precision=st.sampled_from(["year", "month", "day", "second"]),
)
def test_date_prefix_parsing_property(
    prefix: str, year: int, month: int, day: int, precision: str
) -> None:
    text = {
        "year": f"{year:04d}",
        "month": f"{year:04d}-{month:02d}",
        "day": f"{year:04d}-{month:02d}-{day:02d}",
        "second": f"{year:04d}-{month:02d}-{day:02d}T13:14:15Z",
    }[precision]
    value = parse_date(prefix + text)
    assert value.prefix == Prefix(prefix or "eq")
    assert value.low < value.high
    assert value.low.year == year
    assert value.low == datetime(
        year,
        month if precision != "year" else 1,
        day if precision in ("day", "second") else 1,
        *((13, 14, 15) if precision == "second" else ()),
    )


@given(st.text(min_size=1, max_size=12).filter(lambda t: not t[:1].isdigit()))
def test_non_dates_are_rejected_with_the_rule(text: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse("Observation", [("date", "ge" + text.replace(",", "x"))])
    issue = caught.value.outcome()["issue"][0]
    assert "search-value-date" in issue["diagnostics"]
    assert issue["expression"] == ["date"]


def test_number_precision_range() -> None:
    assert parse_number("100") == NumberValue(
        Prefix.EQ, Decimal("100"), Decimal("99.5"), Decimal("100.5")
    )
    assert parse_number("gt1.50").low == Decimal("1.495")


def test_quantity_forms() -> None:
    criterion = parse("Observation", [("value-quantity", "le5.4|http://unitsofmeasure.org|mg")])
    assert isinstance(criterion.filters[0], Criterion)
    value = criterion.filters[0].values[0]
    assert isinstance(value, QuantityValue)
    assert (value.number.prefix, value.system, value.code) == (
        Prefix.LE,
        "http://unitsofmeasure.org",
        "mg",
    )
    unit = parse("Observation", [("value-quantity", "5.4||mg")]).filters[0]
    assert isinstance(unit, Criterion)
    assert unit.values[0] == QuantityValue(parse_number("5.4"), None, "mg", code_or_unit=True)


def test_reference_forms() -> None:
    criterion = parse(
        "Observation",
        [("subject", f"123,Patient/7,{BASE}/Patient/8,http://other.org/fhir/Patient/9")],
    ).filters[0]
    assert isinstance(criterion, Criterion)
    assert criterion.values == (
        ReferenceValue(None, "123"),
        ReferenceValue("Patient", "7"),
        ReferenceValue("Patient", "8"),
        ReferenceValue(None, None, url="http://other.org/fhir/Patient/9"),
    )
    typed = parse("Observation", [("subject:Patient", "5")]).filters[0]
    assert isinstance(typed, Criterion)
    assert typed.values == (ReferenceValue("Patient", "5"),)


def test_chain_and_has() -> None:
    parsed = parse("Observation", [("subject:Patient.identifier", "urn:s|1")])
    chain = parsed.filters[0]
    assert isinstance(chain, Chain)
    assert (chain.reference, chain.target_types, chain.inner.code) == (
        "subject",
        ("Patient",),
        "identifier",
    )
    has = parse("Patient", [("_has:Observation:patient:code", "1234-5")]).filters[0]
    assert isinstance(has, ReverseChain)
    assert (has.source_type, has.reference, has.inner.code) == ("Observation", "patient", "code")


def test_result_options() -> None:
    parsed = parse(
        "Observation",
        [
            ("_count", "5000"),
            ("_sort", "-date,_id"),
            ("_summary", "true"),
            ("_total", "none"),
            ("_include", "Observation:subject:Patient"),
            ("_revinclude:iterate", "Provenance:target"),
        ],
    )
    options = parsed.options
    assert options.count == 1000
    assert options.sort == (SortKey("date", "date", True), SortKey("_id", "id", False))
    assert options.summary is Summary.TRUE
    assert options.total is Total.NONE
    assert options.includes == (
        Include("Observation", "subject", "Patient", iterate=False, reverse=False),
        Include("Provenance", "target", None, iterate=True, reverse=True),
    )


def test_system_search_types() -> None:
    parsed = parse(None, [("_type", "Patient,Observation"), ("_id", "1")])
    assert parsed.resource_types == ("Patient", "Observation")
    assert not parsed.all_types
    assert parse(None, [("_id", "1")]).all_types


@pytest.mark.parametrize(
    ("res_type", "query", "expression", "rule"),
    [
        ("Patient", [("nonsense", "1")], "nonsense", "search-param-known"),
        ("Patient", [("name:below", "x")], "name:below", "search-modifier-supported"),
        ("Patient", [("birthdate", "ge2024-13")], "birthdate", "search-value-date"),
        ("Observation", [("value-quantity", "abc")], "value-quantity", "search-value-quantity"),
        ("Patient", [("gender:missing", "maybe")], "gender:missing", "search-value-missing"),
        ("Patient", [("_count", "-1")], "_count", "search-count"),
        ("Patient", [("_sort", "link")], "_sort", "search-sort"),
        ("Patient", [("_summary", "short")], "_summary", "search-summary"),
        ("Patient", [("_include", "Observation:subject")], "_include", "search-include"),
        (
            "Observation",
            [("subject.organization.name", "x")],
            "subject.organization.name",
            "search-chain-depth",
        ),
        ("Observation", [("subject:Device.name", "x")], "subject:Device.name", "search-chain"),
        (
            "Patient",
            [("_has:Observation:patient:_has:X:y:z", "1")],
            "_has:Observation:patient:_has:X:y:z",
            "search-has-depth",
        ),
        ("Patient", [("_text", "x")], "_text", "search-param-supported"),
        ("Patient", [("identifier", "a,")], "identifier", "search-value-empty"),
        (
            "Observation",
            [("code-value-quantity", "x")],
            "code-value-quantity",
            "search-param-kind-supported",
        ),
        (None, [("name", "x")], "name", "search-param-known"),
    ],
)
def test_errors_name_parameter_and_rule(
    res_type: str | None, query: list[tuple[str, str]], expression: str, rule: str
) -> None:
    issue = error_of(res_type, query)
    assert issue["expression"] == [expression]
    assert f"[rule: {rule}]" in str(issue["diagnostics"])
