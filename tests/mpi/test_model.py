"""EM on a small data set whose true parameters are known recovers them; the dump is readable."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from yilian.mpi.blocking import BlockingRule
from yilian.mpi.comparisons import exact
from yilian.mpi.evaluate import pair_quality
from yilian.mpi.model import Matcher, ModelSpec
from yilian.mpi.parameters import parameters_json, parameters_markdown
from yilian.mpi.records import Records, object_array

ERROR_RATE = 0.1  # each field of a duplicate is replaced by another value with this probability
VOCAB = {"first": 40, "last": 40, "dob": 2000, "zip": 100}


def known_data(seed: int = 7) -> tuple[Records, np.ndarray]:
    rng = random.Random(seed)
    rows, entity = [], []
    for e in range(800):
        truth = {f: rng.randrange(size) for f, size in VOCAB.items()}
        for _ in range(2 if e % 2 else 1):  # half the entities are registered twice
            row = {}
            for f, value in truth.items():
                if len(entity) and entity[-1] == e and rng.random() < ERROR_RATE:
                    value = (value + rng.randrange(1, VOCAB[f])) % VOCAB[f]
                row[f] = f"{f}{value}"
            rows.append(row)
            entity.append(e)
    return Records.from_rows(rows, list(VOCAB)), object_array(str(e) for e in entity)


SPEC = ModelSpec(
    "known",
    tuple(exact(f, f) for f in VOCAB),
    tuple(BlockingRule(f, (f,)) for f in ("dob", "zip"))
    + (BlockingRule("names", ("first", "last")),),
)


def test_em_recovers_the_generating_parameters() -> None:
    records, entity = known_data()
    matcher = Matcher(SPEC)
    report = matcher.train(records, sample=200_000, seed=1)
    assert report.converged
    params = matcher.parameters
    assert params is not None
    n = len(records)
    true_prior = 400 / (n * (n - 1) / 2)
    assert params.prior == pytest.approx(true_prior, rel=0.15)
    for k, field in enumerate(VOCAB):
        # m(agree) = 1 - error rate; u(agree) = 1 / vocabulary size (values are uniform).
        assert params.m[k][1] == pytest.approx(1 - ERROR_RATE, abs=0.04), field
        assert params.u[k][1] == pytest.approx(1 / VOCAB[field], rel=0.35), field
    scored = matcher.predict(records)
    links = scored.links()
    quality = pair_quality(records, entity, scored.i[links], scored.j[links])
    assert quality.f1 > 0.94  # two wrong fields out of four leave some pairs ambiguous


def test_parameters_are_inspectable() -> None:
    records, _ = known_data()
    matcher = Matcher(SPEC)
    matcher.train(records, sample=50_000)
    assert matcher.parameters is not None
    data = json.loads(parameters_json(SPEC, matcher.parameters))
    assert [c["name"] for c in data["comparisons"]] == list(VOCAB)
    level = data["comparisons"][2]["levels"][1]
    assert level["label"] == "exact" and level["weight_bits"] > 5  # dob: 1 in 2,000 by chance
    assert "| dob | exact |" in parameters_markdown(SPEC, matcher.parameters)


def test_scoring_needs_parameters() -> None:
    records, _ = known_data()
    with pytest.raises(RuntimeError, match="no parameters"):
        Matcher(SPEC).predict(records)


def test_parameters_round_trip_and_reject_a_foreign_file() -> None:
    from yilian.mpi.parameters import ParameterFileError, parameters_from_json

    records, _ = known_data()
    matcher = Matcher(SPEC)
    matcher.train(records, sample=50_000)
    assert matcher.parameters is not None
    text = parameters_json(SPEC, matcher.parameters)
    loaded = parameters_from_json(SPEC, text)
    before = matcher.predict(records)
    after = Matcher(SPEC, loaded).predict(records)
    assert np.allclose(before.weight, after.weight, atol=1e-3)
    other = ModelSpec("other", SPEC.comparisons, SPEC.blocking)
    with pytest.raises(ParameterFileError, match="model 'known'"):
        parameters_from_json(other, text)
    with pytest.raises(ParameterFileError, match="not a yilian parameter file"):
        parameters_from_json(SPEC, "{}")
