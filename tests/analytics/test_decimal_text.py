"""The decimal-text rewrite: precision-carrying numbers become marked strings, nothing else moves.

Run on both engines' SQL (DuckDB RE2 and Spark Java regex) through the same cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb
import pytest

from yilian.analytics.decimal_text import (
    DECIMAL_MARK,
    duckdb_marking_sql,
    spark_marking_column,
)

Marker = Callable[[str], str]


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def mark(request: pytest.FixtureRequest) -> Marker:
    if request.param == "duckdb":
        con = duckdb.connect()

        def duck(text: str) -> str:
            row = con.execute(f"SELECT {duckdb_marking_sql('t')} FROM (SELECT ? AS t)", [text])
            return str(row.fetchall()[0][0])

        return duck
    spark = request.getfixturevalue("spark_session")

    def spark_mark(text: str) -> str:
        frame = spark.createDataFrame([(text,)], "t string")  # type: ignore[attr-defined]
        return str(frame.select(spark_marking_column(frame["t"])).collect()[0][0])

    return spark_mark


LOSSY = ["1.0", "1.50", "-0.10", "100.0", "1e5", "3.2E-2", "2.5e+3"]
EXACT = ["1", "-7", "1.5", "0.25", "120.05", "10", "1000"]


def test_lossy_numbers_become_marked_strings(mark: Marker) -> None:
    for number in LOSSY:
        out = json.loads(mark(f'{{"v": {number}, "w": [{number},{number}]}}'))
        marked = DECIMAL_MARK + number
        assert out == {"v": marked, "w": [marked, marked]}, number


def test_numbers_the_engines_keep_exactly_are_left_alone(mark: Marker) -> None:
    for number in EXACT:
        text = f'{{"v": {number}, "w": [{number}, 2]}}'
        assert mark(text) == text


@pytest.mark.parametrize(
    "text",
    [
        '{"s": "dose: 1.0, then 2.50]"}',
        '{"s": "quoted \\" : 1.0 ,", "n": 1.5}',
        '{"t": "2019-01-01T10:00:00.000Z", "n": 3}',
    ],
)
def test_digits_inside_strings_are_never_touched(mark: Marker, text: str) -> None:
    assert json.loads(mark(text)) == json.loads(text)


def test_mixed_document_marks_only_the_numbers(mark: Marker) -> None:
    text = '{"s": "x 1.0, 2.0]", "v": 1.0, "q": {"value": 2.50, "unit": "mg"}}'
    assert json.loads(mark(text)) == {
        "s": "x 1.0, 2.0]",
        "v": DECIMAL_MARK + "1.0",
        "q": {"value": DECIMAL_MARK + "2.50", "unit": "mg"},
    }
