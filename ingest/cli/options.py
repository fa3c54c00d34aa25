"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_LAKE = Path("lake")


def lake_option(function):  # noqa: ANN001, ANN201 - a click decorator
    return click.option(
        "--lake",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Lake folder (default: the config's `lake`, else ./lake).",
    )(function)


def resolve_lake(lake: Path | None, configured: Path | None = None) -> Path:
    """The lake a command works on: the flag, else the config's, else ./lake."""
    return lake or configured or DEFAULT_LAKE
