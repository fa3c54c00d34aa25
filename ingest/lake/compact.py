"""Compaction: merge a partition's small Parquet files into larger ones.

Many small batches make every query open many files. Compaction merges the small
files of each partition folder (one source, one landing day) into files of up to
`target_bytes`, without a moment where a reader sees a row twice or misses one:
the merged files are written first, one manifest save swaps every affected batch's
reference to them (each batch keeps its raw file and metadata, and records
`compacted_into`), and only then are the old files deleted. Rerunning merges what
is small again; files already at the target size are left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from ingest.errors import LakeFileMissing
from ingest.lake.crash import crash_point
from ingest.lake.manifest import Manifest
from ingest.lake.rewrite import (
    data_layers,
    delete_unreferenced,
    file_bytes,
    files_by_layer,
    fresh_name,
    merge_parquet,
)
from ingest.lake.writer import LakeWriter

log = logging.getLogger(__name__)

SMALL_BYTES = 32 * 1024 * 1024  # files below this size are merged
TARGET_BYTES = 128 * 1024 * 1024  # merged files grow up to about this size
COMPACT_TAG = "c"


class CompactionMismatch(RuntimeError):
    """A merged file does not hold exactly the rows of its inputs (nothing swapped)."""


@dataclass
class CompactSummary:
    files_before: int = 0
    files_after: int = 0
    files_merged: int = 0
    files_written: int = 0
    batches: int = 0
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[str, dict[str, Any]], None]


def _quiet(kind: str, info: dict[str, Any]) -> None:
    return None


def plan_compaction(
    manifest: Manifest,
    layer: str,
    small_bytes: int = SMALL_BYTES,
    target_bytes: int = TARGET_BYTES,
) -> list[list[str]]:
    """Groups of at least two small files of one folder, each up to target_bytes."""
    by_folder: dict[str, list[tuple[str, int]]] = {}
    for relative in files_by_layer(manifest, layer):
        path = manifest.lake / relative
        size = path.stat().st_size if path.exists() else 0
        if size < small_bytes:
            folder = str(PurePosixPath(relative).parent)
            by_folder.setdefault(folder, []).append((relative, size))

    groups: list[list[str]] = []
    for files in by_folder.values():
        group: list[str] = []
        total = 0
        for relative, size in files:
            if group and total + size > target_bytes:
                groups.append(group)
                group, total = [], 0
            group.append(relative)
            total += size
        groups.append(group)
    return [g for g in groups if len(g) >= 2]


def compact_lake(
    writer: LakeWriter,
    *,
    small_bytes: int = SMALL_BYTES,
    target_bytes: int = TARGET_BYTES,
    on_progress: ProgressFn = _quiet,
) -> CompactSummary:
    """Merge the small Parquet files of every layer; one manifest save commits it."""
    manifest = writer.manifest
    assert manifest is not None, "use LakeWriter as a context manager"
    lake = writer.lake
    started = time.monotonic()
    summary = CompactSummary()
    layers = data_layers(manifest)
    summary.files_before = sum(len(files_by_layer(manifest, la)) for la in layers)
    for layer in layers:  # merging reads every file of a group: all must be there
        missing, rebuildable = manifest.missing_files(layer)
        if missing:
            raise LakeFileMissing(lake.resolve(), [p.resolve() for p in missing],
                                  rebuildable)

    # Step 1: write every merged file under a name no batch uses yet
    swaps: list[tuple[str, list[str], str, list[str]]] = []
    for layer in layers:
        owners = files_by_layer(manifest, layer)
        groups = plan_compaction(manifest, layer, small_bytes, target_bytes)
        on_progress("groups", {"layer": layer, "total": len(groups)})
        for group in groups:
            folder = str(PurePosixPath(group[0]).parent)
            target = fresh_name(manifest, folder, COMPACT_TAG, ".parquet")
            expected = _expected_rows(manifest, layer, group, owners)
            rows, size = merge_parquet(lake, group, target)
            if expected is not None and rows != expected:
                raise CompactionMismatch(
                    f"merging {len(group)} files into {target} gave {rows} rows, "
                    f"expected {expected}; nothing was changed"
                )
            batches = [b for relative in group for b in owners[relative]]
            swaps.append((layer, group, target, batches))
            summary.rows += rows
            summary.files_merged += len(group)
            summary.bytes_before += file_bytes(lake, group)
            summary.bytes_after += size
            on_progress("merged", {"layer": layer, "files": len(group), "rows": rows})
    crash_point("compact_written")
    if not swaps:
        summary.files_after = summary.files_before
        summary.seconds = time.monotonic() - started
        return summary

    # Step 2: the commit point, one save for every swap
    now = datetime.now(UTC).isoformat()
    for layer, _, target, batches in swaps:
        for batch_id in batches:
            info = manifest.batches[batch_id]
            info["files"][layer] = target
            if layer == "messages":
                info["compacted_into"] = target
                info["compacted_at"] = now
            summary.batches += 1
    summary.files_written = len(swaps)
    summary.files_after = sum(len(files_by_layer(manifest, la)) for la in layers)
    summary.seconds = time.monotonic() - started
    manifest.record_run({"command": "compact", "finished_at": now,
                         "status": "ok", **summary.to_json()})
    manifest.save()
    crash_point("compact_recorded")

    # Step 3: the old files are unreferenced now
    for _, group, _, _ in swaps:
        delete_unreferenced(lake, manifest, group)
    summary.seconds = time.monotonic() - started
    log.info("compacted %d files into %d", summary.files_merged, summary.files_written)
    return summary


def _expected_rows(
    manifest: Manifest, layer: str, group: list[str], owners: dict[str, list[str]]
) -> int | None:
    """The rows the manifest says the group's files hold (messages only)."""
    if layer != "messages":
        return None
    batches = [b for relative in group for b in owners.get(relative, [])]
    counts = [manifest.batches[b].get("rows") for b in batches]
    if any(c is None for c in counts):
        return None
    return sum(counts)
