"""Inspectable model parameters: m, u and the match weight of every comparison level.

A data steward (and a reviewer of the model) should be able to see why two records were linked:
each level's weight is log2(m/u), the Bayes factor in bits that agreement at that level adds.
"""

from __future__ import annotations

import json
import math

import numpy as np

from yilian.mpi.model import ModelSpec, Parameters


def parameters_dict(spec: ModelSpec, params: Parameters) -> dict[str, object]:
    comparisons = []
    for comparison, m, u, w in zip(
        spec.comparisons, params.m, params.u, params.weights(), strict=True
    ):
        levels = [
            {
                "level": k,
                "label": label,
                "m": float(f"{m[k]:.6g}"),
                "u": float(f"{u[k]:.6g}"),
                "weight_bits": round(float(w[k]), 3),
            }
            for k, label in enumerate(comparison.labels, start=1)
        ]
        comparisons.append(
            {
                "name": comparison.name,
                "term_frequency_column": comparison.tf_column,
                "levels": [{"level": 0, "label": "missing", "weight_bits": 0.0}, *levels],
            }
        )
    return {
        "model": spec.name,
        "probability_two_random_records_match": float(f"{params.prior:.6g}"),
        "prior_weight_bits": round(math.log2(params.prior / (1 - params.prior)), 3),
        "blocking_rules": [{"name": r.name, "columns": list(r.columns)} for r in spec.blocking],
        "comparisons": comparisons,
    }


def parameters_json(spec: ModelSpec, params: Parameters) -> str:
    return json.dumps(parameters_dict(spec, params), ensure_ascii=False, indent=2) + "\n"


def parameters_markdown(spec: ModelSpec, params: Parameters) -> str:
    data = parameters_dict(spec, params)
    lines = [
        f"# Match parameters: {spec.name}",
        "",
        f"Probability two random records match: {data['probability_two_random_records_match']} "
        f"(prior weight {data['prior_weight_bits']} bits).",
        "",
        "| comparison | level | m | u | weight (bits) |",
        "|---|---|---|---|---|",
    ]
    for comparison, m, u, w in zip(
        spec.comparisons, params.m, params.u, params.weights(), strict=True
    ):
        tf = " (TF-adjusted)" if comparison.tf_column else ""
        for k, label in enumerate(comparison.labels, start=1):
            lines.append(
                f"| {comparison.name}{tf if k == 1 else ''} | {label} | {m[k]:.4f} | {u[k]:.3g} "
                f"| {w[k]:+.2f} |"
            )
    return "\n".join(lines) + "\n"


class ParameterFileError(ValueError):
    """A parameter file does not fit the model; the message names the comparison and rule."""


def parameters_from_json(spec: ModelSpec, text: str) -> Parameters:
    """Read back ``parameters_json`` output, checking it belongs to this model's comparisons.

    Lets a trained model be reused (the batch job's parameters for the real-time path) without
    retraining; a file from another model version is rejected rather than misapplied.
    """
    try:
        data = json.loads(text)
        prior = float(data["probability_two_random_records_match"])
        comparisons = data["comparisons"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParameterFileError(f"not a yilian parameter file ({exc})") from None
    if data.get("model") != spec.name:
        raise ParameterFileError(
            f"parameters are for model {data.get('model')!r}, not {spec.name!r}"
        )
    if not 0.0 < prior < 1.0:
        raise ParameterFileError(
            f"probability_two_random_records_match must be in (0, 1), got {prior}"
        )
    names = [c["name"] for c in comparisons]
    if names != [c.name for c in spec.comparisons]:
        raise ParameterFileError(f"comparisons {names} do not match the model's")
    m_list, u_list = [], []
    for comparison, stored in zip(spec.comparisons, comparisons, strict=True):
        levels = stored["levels"][1:]
        if [lv["label"] for lv in levels] != list(comparison.labels):
            raise ParameterFileError(f"{comparison.name}: levels differ from the model's")
        m = np.array([0.0, *[float(lv["m"]) for lv in levels]])
        u = np.array([0.0, *[float(lv["u"]) for lv in levels]])
        if (m[1:] <= 0).any() or (u[1:] <= 0).any():
            raise ParameterFileError(f"{comparison.name}: m and u must be positive")
        m_list.append(m)
        u_list.append(u)
    return Parameters(prior, m_list, u_list)
