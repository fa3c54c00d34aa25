"""The manifest: the lake's commit point, its batch list, cursors and run history.

A batch exists once the manifest that lists it has been saved; files the manifest does
not list are leftovers of an interrupted write. Saving writes a new file and renames it
over the old one, then writes the same bytes to manifest.json.bak, a copy to restore
from if the manifest is lost or damaged.
"""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path
from typing import Any

from ingest.errors import ManifestCorrupt, ManifestMissing, ManifestVersionTooNew
from ingest.lake.files import write_bytes_atomic

MANIFEST_NAME = "manifest.json"
DATA_LAYERS = ("raw", "messages", "alerts")  # folders of batch files
MANIFEST_VERSION = 2
RUN_HISTORY = 100


def _empty() -> dict[str, Any]:
    return {
        "version": MANIFEST_VERSION,
        "next_batch_seq": 1,
        "batches": {},
        "cursors": {},
        "chats": {},
        "imports": {},
        "runs": [],
        # Version 2: chats and senders forgotten on request (hashed; ingest/lake/forget.py)
        # and a counter for the names of rewritten files (compaction, rebuild, forget).
        "blocklist": {"chats": {}, "senders": {}},
        "next_file_seq": 1,
        # Added without a version change (older readers keep it as it is): the zone
        # each source's local times were read in, by source key ("mcp:lharries",
        # "bridge"), recorded at extract/monitor time; ingest/sources/factory.py.
        # A lake written before has none; readers use .get and fall back.
        "zones": {},
    }


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the forget blocklist and the rewritten-file counter."""
    data.setdefault("blocklist", {"chats": {}, "senders": {}})
    data.setdefault("next_file_seq", 1)
    data["version"] = 2
    return data


# Migrations from version N to N+1, applied in order on load.
MIGRATIONS: list = [_v1_to_v2]


def _refuse_lost_manifest(lake: Path) -> None:
    """Raise when `lake` holds a manifest backup or batch files but no manifest.

    Writers save an empty manifest before their first batch, so batch files without
    a manifest mean it was lost (deleted, or a partial copy of the lake).
    """
    backup = lake / (MANIFEST_NAME + ".bak")
    files = [
        p for layer in DATA_LAYERS if (lake / layer).is_dir()
        for p in (lake / layer).rglob("*") if p.is_file()
    ]
    if backup.exists() or files:
        raise ManifestMissing(lake / MANIFEST_NAME, len(files), backup.exists())


class Manifest:
    """In-memory view of manifest.json; `save` makes changes durable."""

    def __init__(self, lake: Path, data: dict[str, Any]) -> None:
        self.lake = lake
        self.data = data

    @property
    def path(self) -> Path:
        return self.lake / MANIFEST_NAME

    @classmethod
    def load(cls, lake: Path) -> Manifest:
        """Read the manifest of `lake`; an absent one is an empty lake.

        A lake whose manifest is gone but whose batch files are not is refused: the
        writer would take every file for a leftover of a crash and remove it.
        """
        path = lake / MANIFEST_NAME
        if not path.exists():
            _refuse_lost_manifest(lake)
            return cls(lake, _empty())
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestCorrupt(path, str(exc)) from exc
        if not isinstance(data, dict) or "version" not in data:
            raise ManifestCorrupt(path, "no version field")
        version = data["version"]
        if version > MANIFEST_VERSION:
            raise ManifestVersionTooNew(path, version, MANIFEST_VERSION)
        for migrate in MIGRATIONS[version - 1 :]:
            data = migrate(data)
        merged = _empty() | data
        return cls(lake, merged)

    def save(self) -> None:
        """Write the manifest, then the same bytes as manifest.json.bak.

        The copy is of this save, not the one before: restoring it after the
        manifest is lost or damaged gives back every recorded batch (an older copy
        would leave the newest batch's files unlisted, and the next writer would
        remove them as leftovers). Each write is atomic, so a crash between the two
        leaves a whole manifest and a whole copy, at most one save apart.
        """
        payload = json.dumps(self.data, indent=1, sort_keys=True, ensure_ascii=False)
        write_bytes_atomic(self.path, payload.encode("utf-8"))
        write_bytes_atomic(self.path.with_name(MANIFEST_NAME + ".bak"),
                           payload.encode("utf-8"))

    # Batches

    def take_batch_id(self) -> str:
        seq = self.data["next_batch_seq"]
        self.data["next_batch_seq"] = seq + 1
        return f"b{seq:08d}"

    @property
    def batches(self) -> dict[str, dict[str, Any]]:
        return self.data["batches"]

    def record_batch(self, batch_id: str, info: dict[str, Any]) -> None:
        self.data["batches"][batch_id] = info

    def parquet_files(self, layer: str = "messages") -> list[Path]:
        """Absolute paths of the recorded Parquet files of one layer, in batch order."""
        files = []
        seen: set[str] = set()  # a compacted file is shared by many batches
        for batch_id in sorted(self.batches):
            relative = self.batches[batch_id].get("files", {}).get(layer)
            if relative and relative not in seen:
                seen.add(relative)
                files.append(self.lake / relative)
        return files

    def missing_files(self, layer: str = "messages") -> tuple[list[Path], bool]:
        """The recorded files of `layer` not on disk, and whether every batch in them
        still has its raw file (so `walake rebuild` can recreate them)."""
        missing: list[Path] = []
        rebuildable = True
        for path in self.parquet_files(layer):
            if path.is_file():
                continue
            missing.append(path)
            relative = str(path.relative_to(self.lake))
            for info in self.batches.values():
                files = info.get("files", {})
                if files.get(layer) == relative:
                    raw = files.get("raw")
                    if not raw or not (self.lake / raw).is_file():
                        rebuildable = False
        return missing, rebuildable and bool(missing)

    def take_file_seq(self) -> int:
        """A fresh number for the name of a rewritten file (never reused)."""
        seq = self.data["next_file_seq"]
        self.data["next_file_seq"] = seq + 1
        return seq

    def recorded_paths(self) -> set[str]:
        paths: set[str] = set()
        for info in self.batches.values():
            paths.update(info.get("files", {}).values())
        return paths

    # Cursors, keyed by source instance then chat id

    def cursor(self, source_key: str, chat_id: str) -> dict[str, Any] | None:
        found = self.data["cursors"].get(source_key, {}).get(chat_id)
        return deepcopy(found) if found is not None else None

    def set_cursor(self, source_key: str, chat_id: str, cursor: dict[str, Any]) -> None:
        self.data["cursors"].setdefault(source_key, {})[chat_id] = cursor

    def cursors(self, source_key: str) -> dict[str, dict[str, Any]]:
        return self.data["cursors"].get(source_key, {})

    # Chats and runs

    def note_chat(self, chat_id: str, name: str | None, is_group: bool) -> None:
        self.data["chats"][chat_id] = {"name": name, "is_group": is_group}

    def record_run(self, run: dict[str, Any]) -> None:
        runs = self.data["runs"]
        runs.append(run)
        del runs[:-RUN_HISTORY]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.data["runs"]

    # Zones: the zone each source's local times were read in

    def zone(self, source_key: str) -> str | None:
        return (self.data.get("zones") or {}).get(source_key)

    def set_zone(self, source_key: str, name: str) -> None:
        self.data.setdefault("zones", {})[source_key] = name

    def zones_of(self, source: str) -> dict[str, str]:
        """Recorded zones of the source keys of one batch source ("mcp" -> mcp:*)."""
        zones = self.data.get("zones") or {}
        return {k: v for k, v in zones.items() if k.split(":", 1)[0] == source}
