"""Bulk Data NDJSON: the files of an export, split into chunks a task reads on its own.

A plain file is split at byte offsets; a chunk owns every line that *starts* inside its range
(the usual rule of splittable text), so each line is read once whatever the split. A gzip file
cannot be entered in the middle and is one chunk.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: Resource types the audit reads (a Bulk Data export names its files after them).
RESOURCE_TYPES = (
    "Patient",
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "Condition",
)
CHUNK_BYTES = 16 * 1024 * 1024
_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class Chunk:
    index: int
    path: str
    start: int
    end: int  # -1: to the end (gzip)

    @property
    def gzip(self) -> bool:
        return self.path.endswith(".gz")


def export_files(inputs: list[str]) -> list[Path]:
    """The NDJSON files among ``inputs`` (files, or directories searched one level deep)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_SUFFIXES))
            )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return found


def chunks(files: list[Path], chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    out: list[Chunk] = []
    for path in files:
        size = path.stat().st_size
        if path.name.endswith(".gz"):
            out.append(Chunk(len(out), str(path), 0, -1))
            continue
        start = 0
        while True:
            end = min(size, start + chunk_bytes)
            out.append(Chunk(len(out), str(path), start, end))
            if end >= size:
                break
            start = end
    return out


def input_bytes(files: list[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def lines(chunk: Chunk) -> Iterator[bytes]:
    """The lines of a chunk (without the newline; blank lines skipped)."""
    if chunk.gzip:
        with gzip.open(chunk.path, "rb") as stream:
            for line in stream:
                if line.strip():
                    yield line.rstrip(b"\r\n")
        return
    with open(chunk.path, "rb") as stream:
        yield from _range_lines(stream, chunk.start, chunk.end)


def _range_lines(stream: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    if start > 0:
        # The line that straddles ``start`` belongs to the previous chunk, unless ``start`` is
        # exactly the beginning of a line.
        stream.seek(start - 1)
        if stream.read(1) != b"\n":
            stream.readline()
    else:
        stream.seek(0)
    position = stream.tell()
    while position < end:
        line = stream.readline()
        if not line:
            break
        position += len(line)
        if line.strip():
            yield line.rstrip(b"\r\n")


def patient_key(resource: Any) -> str | None:
    """The id of the patient a resource belongs to: the Patient's own id, or the
    ``subject`` / ``patient`` reference of the others (relative or absolute URL)."""
    if not isinstance(resource, dict):
        return None
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else None
    for element in ("subject", "patient"):
        ref = resource.get(element)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return _patient_id(ref["reference"])
    return None


def _patient_id(reference: str) -> str | None:
    head, marker, tail = reference.rpartition("Patient/")
    if not marker or (head and not head.endswith("/")):
        return None
    rid = tail.split("/", 1)[0]
    return rid or None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
