"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from ingest.errors import LakePathInvalid

DEFAULT_LAKE = Path("lake")


def lake_option(function):  # noqa: ANN001, ANN201 - a click decorator
    return click.option(
        "--lake",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Lake folder (default: the config's `lake`, else ./lake).",
    )(function)


def resolve_lake(lake: Path | None, configured: Path | None = None, *,
                 check: bool = True) -> Path:
    """The lake a command works on: the flag, else the config's, else ./lake.

    With `check`, fails when the path cannot be a folder (it, or a folder above it,
    is a file); `walake diagnostics` reports that as a failed check instead.
    """
    chosen = Path(lake or configured or DEFAULT_LAKE).expanduser()
    if not check:
        return chosen
    probe = chosen
    while True:
        if probe.exists() or probe.is_symlink():
            if not probe.is_dir():
                raise LakePathInvalid(chosen, probe)
            break
        if probe.parent == probe:
            break
        probe = probe.parent
    return chosen


def lake_totals(lake: Path) -> tuple[int, int]:
    """(batches, rows) the lake's manifest records; (0, 0) when there is none yet."""
    from ingest.lake.manifest import Manifest

    if not (lake / "manifest.json").is_file():
        return 0, 0
    try:
        batches = Manifest.load(lake).batches
    except Exception:  # noqa: BLE001 - only for the summary of an interrupted run
        return 0, 0
    return len(batches), sum(int(b.get("rows") or 0) for b in batches.values())


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 batch', '2 batches': the count with the word in the right number."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def interrupted(lake: Path, before: tuple[int, int], rerun: str) -> NoReturn:
    """Ctrl+C: say what the lake kept and how to continue; exit 130."""
    batches, rows = lake_totals(lake)
    new_batches = max(0, batches - before[0])
    new_rows = max(0, rows - before[1])
    click.echo(
        f"\nInterrupted. The lake {lake} keeps {plural(new_rows, 'new message')} from "
        f"{plural(new_batches, 'batch', 'batches')} recorded before the stop; nothing "
        f"half-written counts. {rerun}",
        err=True,
    )
    raise SystemExit(130)


def duration(seconds: float) -> str:
    """A span for people: '2.5 s', '12 min', '3.4 h', '583 days'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:,.0f} days"
