"""Rewriting recorded lake files: the shared steps of compact, rebuild and forget.

Every rewrite follows one order, so a crash at any point loses nothing:
1. the new files are written under fresh names (temporary name, fsync, rename);
2. one manifest save swaps the batches' file references to them (the commit point);
3. the old files, no longer referenced, are deleted.
A crash before 2 leaves the old state plus new files that no batch owns; a crash
after 2 leaves old files that no batch owns. Either way the next writer to open the
lake removes them (`remove_leftovers`), and readers, which only read the files the
manifest lists, never see a row twice or miss one.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb
import polars as pl
import zstandard

from ingest.lake.files import publish, temp_path_for
from ingest.lake.manifest import Manifest

RAW_LAYER = "raw"


def files_by_layer(manifest: Manifest, layer: str) -> dict[str, list[str]]:
    """Recorded file (relative path) -> the batch ids that reference it, in order."""
    owners: dict[str, list[str]] = {}
    for batch_id in sorted(manifest.batches):
        relative = manifest.batches[batch_id].get("files", {}).get(layer)
        if relative:
            owners.setdefault(relative, []).append(batch_id)
    return owners


def data_layers(manifest: Manifest) -> list[str]:
    """Every Parquet layer the manifest records (messages, and e.g. alerts)."""
    layers: set[str] = set()
    for info in manifest.batches.values():
        layers.update(k for k in info.get("files", {}) if k != RAW_LAYER)
    return sorted(layers)


def fresh_name(manifest: Manifest, folder: str, tag: str, suffix: str) -> str:
    """A relative path in `folder` that no batch has ever used: `<tag><seq><suffix>`."""
    return f"{folder}/{tag}{manifest.take_file_seq():08d}{suffix}"


# Parquet


def read_parquet(lake: Path, relative: str) -> pl.DataFrame:
    return pl.read_parquet(lake / relative)


def write_frame(lake: Path, relative: str, frame: pl.DataFrame) -> int:
    """Write `frame` as zstd Parquet atomically; the file's size."""
    path = lake / relative
    temp = temp_path_for(path)
    frame.write_parquet(temp, compression="zstd", compression_level=6)
    publish(temp, path)
    return path.stat().st_size


def merge_parquet(lake: Path, sources: list[str], target: str) -> tuple[int, int]:
    """Concatenate Parquet files in order into `target` (streamed by DuckDB).

    Returns (rows written, bytes). Columns are matched by name, so files written
    before a column was added merge with newer ones.
    """
    path = lake / target
    temp = temp_path_for(path)
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        files = [(lake / s).as_posix() for s in sources]
        con.execute(
            "copy (select * from read_parquet($files, union_by_name = true, "
            "hive_partitioning = false)) to $target "
            "(format parquet, compression zstd, compression_level 6)",
            {"files": files, "target": temp.as_posix()},
        )
        (rows,) = con.execute(
            "select count(*) from read_parquet($t)", {"t": temp.as_posix()}
        ).fetchall()[0]
    finally:
        con.close()
    publish(temp, path)
    return int(rows), path.stat().st_size


# Raw JSON lines


def read_raw_lines(lake: Path, relative: str) -> list[bytes]:
    """The raw file's lines, each without its line end."""
    with open(lake / relative, "rb") as handle:
        data = zstandard.ZstdDecompressor().stream_reader(handle).read()
    return [line for line in data.split(b"\n") if line]


def write_raw_lines(lake: Path, relative: str, lines: Iterable[bytes]) -> int:
    buffer = io.BytesIO()
    with zstandard.ZstdCompressor(level=6).stream_writer(buffer, closefd=False) as out:
        for line in lines:
            out.write(line + b"\n")
    data = buffer.getvalue()
    path = lake / relative
    temp = temp_path_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    publish(temp, path)
    return len(data)


# After the commit point


def delete_unreferenced(lake: Path, manifest: Manifest, candidates: Iterable[str]) -> int:
    """Delete the files among `candidates` that no batch references any more."""
    recorded = manifest.recorded_paths()
    removed = 0
    for relative in set(candidates):
        if relative in recorded:
            continue
        path = lake / relative
        if path.exists():
            path.unlink()
            removed += 1
    return removed


def file_bytes(lake: Path, relatives: Iterable[str]) -> int:
    total = 0
    for relative in set(relatives):
        path = lake / relative
        if path.exists():
            total += path.stat().st_size
    return total
