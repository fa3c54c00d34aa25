"""Performance: this machine next to the lake, from psutil and the manifest."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import psutil

from ingest.lake.manifest import Manifest
from ingest.lake.rewrite import RAW_LAYER, files_by_layer

RECENT_RUNS = 10


@dataclass
class MachineFacts:
    cpus: int
    load_1m: float | None
    memory_total: int
    memory_available: int
    disk_total: int
    disk_free: int


@dataclass
class LakeFacts:
    path: str
    messages: int = 0
    chats: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # batches per source
    batches: int = 0
    files: dict[str, int] = field(default_factory=dict)  # per layer
    bytes: dict[str, int] = field(default_factory=dict)  # per layer, plus logs
    bytes_per_message: dict[str, float] = field(default_factory=dict)
    extract_rate: float | None = None  # median messages/s of recent runs
    import_rate: float | None = None
    runs_measured: int = 0
    compacted_batches: int = 0
    raw_removed_batches: int = 0


def machine_facts(lake: Path) -> MachineFacts:
    probe = lake if lake.exists() else lake.resolve().parent
    while not probe.exists():
        probe = probe.parent
    disk = psutil.disk_usage(str(probe))
    memory = psutil.virtual_memory()
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return MachineFacts(psutil.cpu_count() or 1, load, memory.total, memory.available,
                        disk.total, disk.free)


def lake_facts(lake: Path) -> LakeFacts:
    manifest = Manifest.load(lake)
    facts = LakeFacts(path=str(lake))
    batches = manifest.batches
    facts.batches = len(batches)
    facts.messages = sum(int(b.get("rows") or 0) for b in batches.values())
    facts.chats = len(manifest.data["chats"])
    facts.sources = dict(Counter(b.get("source", "?") for b in batches.values()))
    facts.compacted_batches = sum(1 for b in batches.values() if b.get("compacted_into"))
    facts.raw_removed_batches = sum(1 for b in batches.values() if b.get("raw_removed_at"))

    layers = {k for b in batches.values() for k in b.get("files", {})} | {RAW_LAYER}
    for layer in sorted(layers):
        files = files_by_layer(manifest, layer)
        facts.files[layer] = len(files)
        facts.bytes[layer] = sum(_size(lake / f) for f in files)
        if facts.messages:
            facts.bytes_per_message[layer] = round(facts.bytes[layer] / facts.messages, 1)
    logs = lake / "logs"
    facts.bytes["logs"] = sum(_size(p) for p in logs.rglob("*")) if logs.exists() else 0

    facts.extract_rate, n_extract = recent_rate(manifest, ("extract",))
    facts.import_rate, n_import = recent_rate(manifest, ("import",))
    facts.runs_measured = n_extract + n_import
    return facts


def recent_rate(manifest: Manifest, commands: tuple[str, ...]) -> tuple[float | None, int]:
    """Median messages/s of the recent finished runs that landed messages."""
    rates = [
        float(r["messages_per_second"]) for r in manifest.runs
        if r.get("command") in commands and r.get("messages")
        and r.get("messages_per_second")
    ][-RECENT_RUNS:]
    return (round(median(rates), 1) if rates else None), len(rates)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def performance_report(lake: Path) -> dict[str, Any]:
    return {"machine": asdict(machine_facts(lake)), "lake": asdict(lake_facts(lake))}
