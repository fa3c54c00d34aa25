"""Private, atomic file writes: temporary name, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.lake.crash import crash_point

DIR_MODE = 0o700
FILE_MODE = 0o600
TEMP_PREFIX = ".tmp-"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` and its missing parents as 0700 folders; idempotent."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")


def publish(temp: Path, final: Path) -> None:
    """fsync a finished temporary file and rename it into place atomically."""
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if final.name == "manifest.json":
        crash_point("manifest_temp_written")
    os.chmod(temp, FILE_MODE)
    os.replace(temp, final)
    fsync_dir(final.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new, never half."""
    ensure_private_dir(path.parent)
    temp = temp_path_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    publish(temp, path)



PARQUET_MAGIC = b"PAR1"


def parquet_looks_whole(path: Path) -> bool:
    """A cheap check (two 4-byte reads): the file starts and ends with Parquet's
    magic, as a truncated or overwritten file does not."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            if handle.seek(0, 2) < 12:
                return False
            handle.seek(-4, 2)
            return head == PARQUET_MAGIC and handle.read(4) == PARQUET_MAGIC
    except OSError:
        return False
