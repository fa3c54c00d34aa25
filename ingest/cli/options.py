"""Options shared by several commands."""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ingest.errors import LakePathInvalid
from ingest.words import plural

__all__ = ["plural"]  # shared by the commands; it lives in ingest.words

DEFAULT_LAKE = Path("lake")
MAX_REPLY_HOURS = 10 * 365 * 24  # ten years: DuckDB's intervals stay in range
MAX_MONITOR_MINUTES = 366 * 24 * 60  # a year
MAX_INTERVAL_SECONDS = 86_400  # a day, as monitoring.check_interval_seconds allows


JSON_FAILURES = "walake.json_failures"  # ctx.meta key: the command runs with --json


def json_option(help: str) -> Callable[[Any], Any]:
    """`--json`. A command run with it that fails also prints one JSON object on
    stdout, `{"status": "failed", "error": ...}` (see `WalakeGroup`), so a script
    reading stdout always gets JSON."""
    return click.option("--json", "as_json", is_flag=True, help=help,
                        callback=_note_json)


def _note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_FAILURES] = True
    return value


class FiniteRange(click.FloatRange):
    """A float in a range that must be a real number: nan, inf and -inf are refused.

    click's FloatRange lets nan through (every comparison with it is false), and inf
    when there is no upper bound; such values reached DuckDB or slept forever.
    """

    def __init__(self, what: str, min: float, max: float | None = None, *,
                 min_open: bool = False) -> None:
        super().__init__(min=min, max=max, min_open=min_open)
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not_finite(value):
            self.fail(f"{value} is not a finite number; give {self.allowed()}.",
                      param, ctx)
        return super().convert(value, param, ctx)

    def allowed(self) -> str:
        """'hours above 0, at most 87,600', 'a score 0 or more'."""
        low = f"above {self.min:g}" if self.min_open else f"{self.min:g} or more"
        high = f", at most {self.max:,g}" if self.max is not None else ""
        return f"{self.what} {low}{high}"


def not_finite(value: Any) -> bool:
    """nan, inf or -inf (as a float or its text); False for anything else."""
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False  # not a number at all: click says so itself


# The number types shared by the commands (the ranges are in their error messages).
THRESHOLD = FiniteRange("a score", 0)
REPLY_HOURS = FiniteRange("hours", 0, MAX_REPLY_HOURS, min_open=True)
MONITOR_MINUTES = FiniteRange("minutes", 0, MAX_MONITOR_MINUTES, min_open=True)
INTERVAL_SECONDS = FiniteRange("seconds", 0, MAX_INTERVAL_SECONDS, min_open=True)


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


def existing_lake(lake: Path) -> Path:
    """`lake`, which must hold a lake (its manifest.json), for commands that work on
    one: a mistyped --lake is refused, never made into a new empty lake."""
    from ingest.lake.manifest import MANIFEST_NAME, Manifest
    from ingest.report import LakeNotFound

    if not (lake / MANIFEST_NAME).is_file():
        if lake.is_dir():
            Manifest.load(lake)  # batch files but no manifest: its own error
        raise LakeNotFound(lake)
    return lake


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
