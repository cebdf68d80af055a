"""Phase 1: one chunk's lines into K partition files, by a stable hash of the patient id.

Every resource of a patient lands in the same partition whatever file or chunk it came from,
so phase 2 reads one partition and holds only that partition's patients. Lines are copied as
they were read (no re-serialisation). Each chunk writes its own files
(``part-0007/chunk-000012.ndjson``): tasks never share a file, so they need no lock and a
retried task simply rewrites its own.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import BinaryIO

from .ndjson import RESOURCE_TYPES, Chunk, lines, patient_key
from .tally import Tally


def partition_of(patient_id: str, partitions: int) -> int:
    """Stable across processes and machines (``hash()`` is salted per process)."""
    return zlib.crc32(patient_id.encode("utf-8")) % partitions


def partition_dir(workdir: str, index: int) -> Path:
    return Path(workdir) / f"part-{index:05d}"


def partition_chunk(chunk: Chunk, workdir: str, partitions: int) -> Tally:
    """Read a chunk; write each resource's line (prefixed by its patient id and a tab) to its
    partition. Returns input counts only."""
    tally = Tally()
    handles: dict[int, BinaryIO] = {}
    try:
        for line in lines(chunk):
            tally.counts["lines"] += 1
            try:
                resource = json.loads(line)
            except ValueError:
                tally.counts["unreadable_lines"] += 1
                continue
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            if kind not in RESOURCE_TYPES:
                tally.counts["other_resources"] += 1
                continue
            tally.counts[f"resources.{kind}"] += 1
            key = patient_key(resource)
            if key is None or "\t" in key or "\n" in key:
                tally.counts["resources_without_patient"] += 1
                continue
            index = partition_of(key, partitions)
            handle = handles.get(index)
            if handle is None:
                folder = partition_dir(workdir, index)
                folder.mkdir(parents=True, exist_ok=True)
                handle = handles[index] = open(folder / f"chunk-{chunk.index:06d}.ndjson", "wb")
            handle.write(key.encode("utf-8") + b"\t" + line + b"\n")
    finally:
        for handle in handles.values():
            handle.close()
    return tally
