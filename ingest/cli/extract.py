"""`walake extract` and `walake demo`: pull chats over MCP into the lake."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import click

from ingest.cli.options import (
    interrupted,
    json_option,
    lake_option,
    lake_totals,
    plural,
    resolve_lake,
)
from ingest.cli.progress import extract_progress
from ingest.config import Config, load_config, with_overrides
from ingest.extract import ExtractOptions, ExtractSummary, last_run, run_extract
from ingest.lake.writer import LakeWriter
from ingest.sources.bridge_pull import pull_store
from ingest.sources.factory import (
    check_source, lake_zone, make_bridge_store, make_mcp_sources,
)
from ingest.sources.mcp_client import open_errlog


def extract_options(function):  # noqa: ANN001, ANN201 - a click decorator
    """The options extract and demo share."""
    decorators = [
        lake_option,
        click.option("--config", "config_path", type=click.Path(dir_okay=False,
                     path_type=Path), help="Config file (default ./walake.toml)."),
        click.option("--max-chats", type=click.IntRange(min=1),
                     help="Chats to pull, most recent first."),
        click.option("--max-messages", type=click.IntRange(min=1),
                     help="Messages per chat to reach back in history, newest first."),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help="Chats per lake batch."),
        click.option("--concurrency", type=click.IntRange(1, 16),
                     help="Server processes pulling different chats at once."),
        click.option("--resume", is_flag=True,
                     help="Continue the last extract with its limits."),
        click.option("--recheck", is_flag=True,
                     help="Read again what the lake has of each chat and land what "
                          "the server got late (a history sync). MCP only: the "
                          "bridge source finds those rows by itself."),
        click.option("--profile", type=click.Choice(["lharries", "json"]),
                     help="Kind of MCP server (default lharries)."),
        click.option("--timezone", help="Zone of the bridge's timestamps (IANA name)."),
        click.option("--include-status", is_flag=True,
                     help="Also pull the status@broadcast pseudo-chat."),
        json_option("Print the summary as JSON."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
        click.option("-v", "--verbose", is_flag=True, help="Debug logs on stderr."),
        click.option("--log-level",
                     type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"],
                                       case_sensitive=False),
                     help="Log level (default: the config's log_level, WARNING)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def effective_config(config: Config, flags: dict[str, Any], previous: dict | None) -> Config:
    """Config with --resume's remembered limits, then the flags, applied."""
    extraction = {
        "max_chats": flags.get("max_chats"),
        "max_messages_per_chat": flags.get("max_messages"),
        "batch_size": flags.get("batch_size"),
    }
    if flags.get("resume") and previous:
        remembered = previous.get("options", {})
        extraction["max_chats"] = extraction["max_chats"] or remembered.get("max_chats")
        extraction["max_messages_per_chat"] = (
            extraction["max_messages_per_chat"] or remembered.get("max_messages")
        )
    config = with_overrides(config, "extraction", **extraction)
    config = with_overrides(config, "performance",
                            max_concurrent_requests=flags.get("concurrency"))
    return with_overrides(config, "source", profile=flags.get("profile"),
                          timezone=flags.get("timezone"), kind=flags.get("source"))


def run(lake: Path, config: Config, flags: dict[str, Any], store: Path | None,
        show_progress: bool) -> ExtractSummary:
    """Open the lake, build the sources and run the extract to the end."""
    check_source(effective_config(config, flags, None), store)  # before the lake
    with LakeWriter(lake) as writer:
        config = effective_config(config, flags, last_run(writer))
        ex = config.extraction
        local = store is not None or config.source.kind == "bridge"  # no pacing
        options = ExtractOptions(
            max_chats=ex.max_chats,
            max_messages=ex.max_messages_per_chat,
            batch_size=ex.batch_size,
            memory_limit_mb=config.performance.memory_limit_mb,
            chat_delay_seconds=0.0 if local else ex.chat_delay_seconds,
            concurrency=config.performance.max_concurrent_requests,
            include_status=flags.get("include_status", False) or ex.include_status_broadcast,
            recheck=flags.get("recheck", False),
        )
        if config.source.kind == "bridge":
            if options.recheck:
                click.echo("Note: --recheck is for MCP servers; the bridge source "
                           "finds late rows by itself, on every run.", err=True)
            # The store is read directly; server concurrency and pacing do not apply
            # The zone recorded for the bridge's rows, unless asked (see lake_zone)
            tz = lake_zone(writer.manifest, "bridge", config.source.timezone)
            bridge = make_bridge_store(config, store)
            with extract_progress(show_progress) as on_progress:
                return pull_store(writer, bridge, tz, options, on_progress)
        with open_errlog(lake) as errlog:
            sources = make_mcp_sources(config, options.concurrency, store, errlog,
                                       delays=not local, manifest=writer.manifest)
            # What is loaded by now lives all run: the collector need not scan it
            gc.freeze()
            with extract_progress(show_progress) as on_progress:
                return asyncio.run(run_extract(writer, sources, options, on_progress))


def _rate(summary: ExtractSummary) -> str:
    """The rate, where there were enough messages for one to mean something."""
    return f", {summary.rate:,.0f} msg/s" if summary.messages >= 100 else ""


def report(summary: ExtractSummary, lake: Path, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"lake": str(lake), **summary.to_json()}, indent=2))
        return
    failed = (f", {plural(len(summary.failed_chats), 'chat')} failed"
              if summary.failed_chats else "")
    pulled = plural(summary.messages, 'new message')
    if summary.new_messages < summary.messages:
        # Rows of messages the lake holds from another source or profile: landed
        # as received, shown once by the views
        pulled = (f"{plural(summary.messages, 'message')} pulled, "
                  f"{summary.new_messages:,} of them new to the lake,")
    click.echo(
        f"{pulled} from {summary.chats_done:,} of "
        f"{plural(summary.chats_selected, 'chat')} in "
        f"{plural(summary.batches, 'batch', 'batches')} "
        f"({summary.seconds:.1f} s{_rate(summary)}){failed} -> {lake}"
    )
    for chat_id, error in summary.failed_chats.items():
        click.echo(f"  failed: {chat_id}: {error}", err=True)


@click.command()
@extract_options
@click.option("--source", "source", type=click.Choice(["mcp", "bridge"]),
              help="Read an MCP server (default), or the bridge's store directly.")
@click.option("--store", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The bridge store (messages.db): read directly with --source "
                   "bridge, else served through the built-in MCP server.")
def extract(lake: Path | None, config_path: Path | None, store: Path | None,
            as_json: bool, quiet: bool, verbose: bool, **flags: Any) -> None:
    """Pull chats and messages from your WhatsApp MCP server into the lake.

    Every run is incremental: each chat continues from its cursor, so a rerun
    adds only what is new, and an interrupted run loses nothing.

    \b
    Examples:
        walake extract --max-chats 100 --max-messages 1000
        walake extract --source bridge --store whatsapp-bridge/store/messages.db
    """
    from ingest.cli import setup_logging

    config, _ = load_config(config_path)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    setup_logging(verbose, flags.pop("log_level", None) or config.resources.log_level,
                  lake)
    before = lake_totals(lake)
    try:
        summary = run(lake, config, flags, store, show_progress=not (quiet or as_json))
    except KeyboardInterrupt:
        interrupted(lake, before, "Run the same command again (or walake extract "
                    "--resume) to continue where it stopped.")
    report(summary, lake, as_json)
    from ingest.cli.operate import after_extract  # compress_old_data, auto_cleanup

    for note in after_extract(lake, config):
        click.echo(note, err=True)
    if summary.failed_chats:
        raise SystemExit(1)


commands = [extract]
