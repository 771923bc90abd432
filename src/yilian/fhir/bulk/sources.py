"""Finding and reading load inputs: NDJSON (plain or gzip) line by line, JSON documents whole.

NDJSON positions are uncompressed byte offsets plus line numbers, so a load can resume exactly
after its last committed line; gzip streams resume by decompressing up to that offset.
FHIR NDJSON: http://hl7.org/fhir/R4/nd-json.html
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
# Files `yilian synth` writes beside its NDJSON that are not FHIR (docs/synth.md): a directory
# walk passes over them; named explicitly, they are read (and rejected) like any other file.
SIDECAR_FILES = frozenset({"demo-users.json"})


def input_kind(path: Path) -> str | None:
    """``ndjson``, ``json`` or None for a file the loader does not read."""
    name = path.name.lower()
    if name.endswith(NDJSON_SUFFIXES):
        return "ndjson"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    return None


def find_inputs(paths: list[Path]) -> list[Path]:
    """Files to load, in a stable order: given files as they are, directories walked sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and input_kind(p) and p.name not in SIDECAR_FILES
            )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return list(dict.fromkeys(p.resolve() for p in found))


def fingerprint(path: Path) -> str:
    """Size and a hash of the first 64 KiB: cheap, and changes when the file is replaced."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(65536)).hexdigest()
    return f"{size}:{head}"


@dataclass
class Chunk:
    lines: list[tuple[int, bytes]]  # (1-based line number, raw line)
    offset: int  # uncompressed bytes consumed once this chunk is committed
    line: int  # lines consumed once this chunk is committed
    disk_position: int  # bytes of the file on disk read so far, for progress


def ndjson_chunks(path: Path, size: int, *, offset: int = 0, line: int = 0) -> Iterator[Chunk]:
    """Chunks of ``size`` non-blank lines, starting after ``offset`` bytes / ``line`` lines."""
    with path.open("rb") as disk:
        stream: IO[bytes] = gzip.GzipFile(fileobj=disk) if _gzipped(path) else disk  # type: ignore[assignment]
        if offset:
            stream.seek(offset)
        lines: list[tuple[int, bytes]] = []
        for raw in stream:
            offset += len(raw)
            line += 1
            if raw.strip():
                lines.append((line, raw))
            if len(lines) >= size:
                yield Chunk(lines, offset, line, disk.tell())
                lines = []
        yield Chunk(lines, offset, line, disk.tell())


def read_document(path: Path) -> Any:
    """A whole JSON file (a Bundle or a single resource)."""
    data = gzip.decompress(path.read_bytes()) if _gzipped(path) else path.read_bytes()
    return orjson.loads(data)


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")
