"""`walake demo`: build the sample store, serve it over MCP, extract it, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ingest.cli.extract import extract_options, report, run
from ingest.cli.options import interrupted, lake_totals, resolve_lake
from ingest.config import load_config, with_overrides

DEFAULT_STORE = Path("demo") / "messages.db"
DEMO_ZONE = "Europe/London"
WHOLE_STORE = 1_000_000  # chats, and messages per chat: the whole store


@click.command()
@extract_options
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_STORE, show_default=True,
              help="Bridge store to serve; generated here if it does not exist.")
@click.option("--chats", type=click.IntRange(min=1), default=50, show_default=True,
              help="Chats in a generated store.")
@click.option("--messages-per-chat", type=click.IntRange(min=1), default=2000,
              show_default=True,
              help="Messages per chat in a generated store.")
@click.option("--no-report", is_flag=True, help="Do not print the report at the end.")
def demo(lake: Path | None, config_path: Path | None, store: Path, chats: int,
         messages_per_chat: int, no_report: bool, as_json: bool, quiet: bool,
         verbose: bool, **flags: Any) -> None:
    """Run the whole pipeline on generated sample data, no WhatsApp needed.

    Builds a sample bridge store (if absent), serves it with the built-in MCP
    server over stdio, extracts every chat into the lake and prints what landed.

    \b
    Example:
        walake demo --lake lake
    """
    from ingest.cli import setup_logging
    from ingest.demo.store import generate_store, has_status_chat

    config, _ = load_config(config_path)
    config = with_overrides(config, "source", timezone=flags.get("timezone") or DEMO_ZONE)
    config = with_overrides(config, "extraction",
                            max_chats=flags.get("max_chats") or WHOLE_STORE,
                            max_messages_per_chat=flags.get("max_messages") or WHOLE_STORE)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    setup_logging(verbose, flags.pop("log_level", None) or config.resources.log_level,
                  lake)
    if not store.exists():
        store.parent.mkdir(parents=True, exist_ok=True)
        if not quiet and not as_json:
            status = (" (one chat is status@broadcast, which extract skips unless "
                      "asked for)" if has_status_chat(chats) else "")
            click.echo(f"Generating a sample store: {chats} chats x "
                       f"{messages_per_chat} messages -> {store}{status}", err=True)
        generate_store(store, chats=chats, messages_per_chat=messages_per_chat,
                       tz=DEMO_ZONE)
    flags = {**flags, "max_chats": None, "max_messages": None, "timezone": None}
    before = lake_totals(lake)
    try:
        summary = run(lake, config, flags, store, show_progress=not (quiet or as_json))
    except KeyboardInterrupt:
        interrupted(lake, before, "Run the same command again to continue where it "
                    "stopped.")
    report(summary, lake, as_json)
    if not (no_report or as_json):
        print_lake_report(lake)


def print_lake_report(lake: Path) -> None:
    from rich.console import Console

    from ingest.report import print_report

    print_report(Console(), lake)


commands = [demo]
