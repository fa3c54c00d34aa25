"""`walake import`: WhatsApp chat exports (.txt, .zip, folders) into the lake."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from ingest.cli import setup_logging
from ingest.cli.options import (
    interrupted,
    json_option,
    lake_option,
    lake_totals,
    plural,
    resolve_lake,
)
from ingest.config import load_config
from ingest.sources.export import FileOutcome, ImportOptions, import_exports
from ingest.terminal import json_visible, visible

SHOWN_UNPLACED = 20


def non_empty(ctx: click.Context, param: click.Parameter,
              value: str | None) -> str | None:
    """Refuse an empty (or blank) value, which would silently mean the default."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            f"needs a non-empty value, got {value!r}. Leave the option out to use "
            "the default.", ctx=ctx, param=param)
    return value


@click.command(name="import")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--chat", callback=non_empty,
              help="Chat name (default: from the file or zip name).")
@click.option("--chat-id", callback=non_empty,
              help="Chat id; pass the chat's JID so these rows merge "
              "with the same chat's MCP rows (default: export:<chat name>).")
@click.option("--me", help="Your name as it appears in the export (sets is_from_me; "
              "without it is_from_me is unknown).")
@click.option("--date-order", type=click.Choice(["dmy", "mdy", "ymd"]),
              help="Date order to apply when a file cannot tell (default dmy).")
@click.option("--tz", "--timezone", "tz",
              help="Time zone the export was written in, e.g. Europe/Berlin "
              "(default: this machine's zone).")
@lake_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default ./walake.toml).")
@json_option("One JSON object per file.")
@click.option("-v", "--verbose", is_flag=True, help="Log details on stderr.")
def import_(paths: tuple[Path, ...], chat: str | None, chat_id: str | None,
            me: str | None, date_order: str | None, tz: str | None,
            lake: Path | None, config_path: Path | None, as_json: bool,
            verbose: bool) -> None:
    """Import WhatsApp chat exports (.txt, .zip or folders of them).

    Re-importing a file adds nothing; a later, longer export of the same chat adds
    only its new messages. A file that fails leaves the lake unchanged. A zip of
    several chat files imports each as its own chat.

    \b
    Example:
        walake import "WhatsApp Chat with Ana.zip" --me "Sam" --tz Europe/Berlin
    """
    config, _ = load_config(config_path)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    setup_logging(verbose, config.resources.log_level, lake)
    before = lake_totals(lake)
    options = ImportOptions(chat=chat, chat_id=chat_id, me=me,
                            date_order=date_order, tz=tz)
    console = Console(stderr=True)
    # Off a terminal the bar would only leave a blank line behind
    with Progress(console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task("importing", total=None)

        def advance(name: str, done: int, total: int) -> None:
            bar.update(task, description=escape(visible(name)), completed=done,
                       total=total)

        try:
            outcomes = import_exports(lake, paths, options, advance)
        except KeyboardInterrupt:
            bar.stop()
            interrupted(lake, before, "Run the same import again to continue: files "
                        "already imported add nothing.")
    for outcome in outcomes:
        click.echo(json_visible(json.dumps(outcome_json(outcome), ensure_ascii=False))
                   if as_json else visible(render(outcome), keep_lines=True))
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        rest = ("the lake is unchanged by them" if len(failed) == len(outcomes)
                else "the lake holds the others")
        raise click.ClickException(
            f"{len(failed)} of {len(outcomes)} file(s) could not be imported "
            f"(see above); {rest}."
        )


def outcome_json(outcome: FileOutcome) -> dict:
    """The machine-readable summary of one file."""
    data: dict = {"path": str(outcome.path), "zone": outcome.zone}
    if outcome.error is not None:
        chat_file = {"file": outcome.name} if outcome.name is not None else {}
        return data | chat_file | {"ok": False, "error": str(outcome.error),
                                   "error_type": type(outcome.error).__name__}
    summary, parsed = outcome.summary, outcome.parsed
    assert summary is not None and parsed is not None
    return data | {
        "ok": True,
        "file": summary.file, "sha256": summary.sha256,
        "chat_id": summary.chat_id, "chat_name": summary.chat_name,
        "is_group": summary.is_group, "messages": summary.messages,
        "system": summary.system, "media": summary.media, "new": summary.new,
        "already_imported": summary.already_imported, "batches": summary.batches,
        "platform": parsed.dialect.platform, "clock": parsed.dialect.clock,
        "dialect": parsed.dialect.describe(parsed.order.order),
        "date_order": parsed.order.order, "date_order_decided": parsed.order.decided,
        "date_order_reason": parsed.order.reason,
        "unplaced": [{"line": u.line, "text": u.text, "reason": u.reason}
                     for u in parsed.unplaced],
        "warnings": summary.warnings,
    }


def render(outcome: FileOutcome) -> str:
    """The human summary of one file: a headline, then indented details."""
    if outcome.error is not None:
        return f"FAILED {outcome.error}"
    summary, parsed = outcome.summary, outcome.parsed
    assert summary is not None and parsed is not None
    added = ("already imported, nothing added" if summary.already_imported
             else f"{summary.new:,} new")
    lines = [
        f"{summary.file}: {plural(summary.messages, 'message')} "
        f"({summary.system:,} system, "
        f"{summary.media:,} media), {added} -> {summary.chat_name!r} "
        f"[{summary.chat_id}]",
        f"  dialect: {parsed.dialect.platform} {parsed.dialect.clock} "
        f"'{parsed.dialect.describe(parsed.order.order)}', date order "
        f"{parsed.order.order} ({parsed.order.reason}), zone {outcome.zone}",
    ]
    for unplaced in parsed.unplaced[:SHOWN_UNPLACED]:
        lines.append(f"  line {unplaced.line}: {unplaced.reason}: "
                     f"{unplaced.text[:60]!r}")
    if len(parsed.unplaced) > SHOWN_UNPLACED:
        lines.append(f"  ... and {len(parsed.unplaced) - SHOWN_UNPLACED} more "
                     "unplaced line(s); --json lists them all")
    lines += [f"  warning: {warning}" for warning in summary.warnings]
    return "\n".join(lines)


commands = [import_]
