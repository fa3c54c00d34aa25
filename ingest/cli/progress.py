"""Progress on stderr with rich: chats done of the total, messages and their rate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

ProgressFn = Callable[[str, dict[str, Any]], None]


@contextmanager
def extract_progress(enabled: bool) -> Iterator[ProgressFn]:
    """A progress callback for run_extract; a no-op when disabled."""
    if not enabled:
        yield lambda kind, info: None
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chats · {task.fields[messages]:,} messages · {task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("extract", total=None, messages=0, rate="-")

        def update(kind: str, info: dict[str, Any]) -> None:
            current = progress.tasks[0]
            if kind == "chats":
                progress.update(task, total=info["total"])
            elif kind == "rows":
                messages = current.fields["messages"] + info["rows"]
                elapsed = current.elapsed or 0.0
                rate = f"{messages / elapsed:,.0f}/s" if elapsed > 0 else "-"
                progress.update(task, messages=messages, rate=rate)
            elif kind == "chat_done":
                progress.advance(task)

        yield update
