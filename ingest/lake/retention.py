"""Retention: remove old raw batches once their rows live in compacted Parquet.

A raw `.jsonl.zst` file is the only way to re-derive a batch's rows (`walake
rebuild`), so it goes only when it is older than `cleanup_old_files_days` and its
batch has been compacted; never before. The batch stays in the manifest with its
Parquet rows and records `raw_removed_at`, so rebuild can say why it cannot redo it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.lake.crash import crash_point
from ingest.lake.manifest import Manifest
from ingest.lake.rewrite import RAW_LAYER, delete_unreferenced
from ingest.lake.writer import LakeWriter


@dataclass
class CleanupPlan:
    days: int
    due: list[str] = field(default_factory=list)  # batch ids whose raw file goes
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    waiting_for_compaction: int = 0  # old enough, but not compacted yet
    dry_run: bool = True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["batches"] = len(self.due)
        return data


def plan_cleanup(manifest: Manifest, days: int, now: datetime | None = None) -> CleanupPlan:
    """The raw files older than `days` whose batch's rows are in compacted Parquet."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=days)
    plan = CleanupPlan(days=days)
    for batch_id in sorted(manifest.batches):
        info = manifest.batches[batch_id]
        raw = info.get("files", {}).get(RAW_LAYER)
        if not raw or datetime.fromisoformat(info["created_at"]) >= cutoff:
            continue
        if not info.get("compacted_into"):
            plan.waiting_for_compaction += 1
            continue
        plan.due.append(batch_id)
        plan.files.append(raw)
        path = manifest.lake / raw
        plan.bytes += path.stat().st_size if path.exists() else 0
    return plan


def cleanup_raw(
    writer: LakeWriter, days: int, *, dry_run: bool = False, now: datetime | None = None
) -> CleanupPlan:
    """Forget the due raw files in one manifest save, then delete them."""
    manifest = writer.manifest
    assert manifest is not None, "use LakeWriter as a context manager"
    plan = plan_cleanup(manifest, days, now)
    plan.dry_run = dry_run
    if dry_run or not plan.due:
        return plan

    stamp = datetime.now(UTC).isoformat()
    for batch_id in plan.due:
        info = manifest.batches[batch_id]
        info["files"].pop(RAW_LAYER)
        info["raw_removed_at"] = stamp
    manifest.record_run({"command": "cleanup", "finished_at": stamp, "status": "ok",
                         "batches": len(plan.due), "bytes": plan.bytes})
    manifest.save()
    crash_point("cleanup_recorded")
    delete_unreferenced(writer.lake, manifest, plan.files)
    return plan
