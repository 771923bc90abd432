"""The synthetic district: a seeded, streaming generator of Changning, Shanghai, as FHIR R4 NDJSON.

Entry points: ``yilian.synth.generator.DistrictGenerator`` (the resource stream),
``yilian.synth.writer.NdjsonWriter`` (one file per type) and ``yilian.synth.cli.synth`` (the
``yilian synth`` command). Every assumption and its source: docs/synth.md.
"""
