"""Streaming NDJSON output: one file per resource type, as FHIR Bulk Data ``$export`` writes.

Lines go straight to their file (orjson, no pretty-printing), so memory does not grow with the
district. Gzip files carry no timestamp (``mtime=0``) so the same input gives the same bytes.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson


class NdjsonWriter:
    """Writes ``{ResourceType}.ndjson`` (or ``.ndjson.gz``) files under ``directory``."""

    def __init__(self, directory: Path, *, compress: bool = False) -> None:
        self.directory = directory
        self.compress = compress
        self.counts: Counter[str] = Counter()
        self._files: dict[str, BinaryIO | gzip.GzipFile] = {}

    def path_for(self, resource_type: str) -> Path:
        suffix = ".ndjson.gz" if self.compress else ".ndjson"
        return self.directory / f"{resource_type}{suffix}"

    def _file(self, resource_type: str) -> BinaryIO | gzip.GzipFile:
        found = self._files.get(resource_type)
        if found is not None:
            return found
        raw = self.path_for(resource_type).open("wb", buffering=1 << 20)
        handle: BinaryIO | gzip.GzipFile = raw
        if self.compress:
            handle = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        self._files[resource_type] = handle
        return handle

    def write(self, resource: dict[str, Any]) -> None:
        resource_type = resource["resourceType"]
        self._file(resource_type).write(orjson.dumps(resource) + b"\n")
        self.counts[resource_type] += 1

    def write_all(self, resources: Iterable[dict[str, Any]]) -> None:
        for resource in resources:
            self.write(resource)

    def close(self) -> None:
        for handle in self._files.values():
            inner = getattr(handle, "fileobj", None)
            handle.close()
            if inner is not None:
                inner.close()
        self._files.clear()

    def __enter__(self) -> NdjsonWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
