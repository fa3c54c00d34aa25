"""`walake report`, `walake export-chat` and `walake sql`: reading the lake's views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import duckdb
from rich.console import Console

from ingest.cli.options import REPLY_HOURS, THRESHOLD, lake_option, resolve_lake
from ingest.config import load_config
from ingest.errors import OutputPathInvalid
from ingest.report import (
    QueryFailed,
    build_report,
    chat_messages,
    check_lake,
    check_reads_only,
    print_report,
    rich_table,
    write_frame,
    write_report,
)
from ingest.views import DEFAULT_REPLY_HOURS, DEFAULT_THRESHOLD, connect, setup_script


def scoring_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--config, --threshold, --reply-hours and --keywords, shared by the three
    commands."""
    function = click.option(
        "--config", "config_path",
        type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Config file whose `lake` to use (default ./walake.toml).",
    )(function)
    function = click.option(
        "--keywords", "keywords_dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
        help="Folder of keyword CSVs (default: <lake>/keywords/, else the built-in "
        "sql/keywords/).",
    )(function)
    function = click.option(
        "--reply-hours", type=REPLY_HOURS, default=DEFAULT_REPLY_HOURS,
        show_default=True,
        help="An opportunity with no reply from me within this many hours is "
        "unanswered.",
    )(function)
    return click.option(
        "--threshold", type=THRESHOLD, default=DEFAULT_THRESHOLD,
        show_default=True,
        help="Minimum score for a message to be an opportunity.",
    )(function)


def lake_folder(lake: Path | None, config_path: Path | None) -> Path:
    """The lake to read: --lake, else the config's `lake`, else ./lake; must exist."""
    config, _ = load_config(config_path)
    return check_lake(resolve_lake(lake, Path(config.lake) if config.lake else None))


def check_out_file(out: Path | None) -> None:
    """--out must be a file path in an existing folder."""
    if out is None:
        return
    if out.is_dir():
        raise OutputPathInvalid(out, "it is a folder, and this writes one file",
                                "Pass a file path, e.g. a new file inside that folder.")
    if not out.parent.is_dir():
        problem = (f"{out.parent} is a file, not a folder" if out.parent.exists()
                   else f"the folder {out.parent} does not exist")
        raise OutputPathInvalid(out, problem, f"Create it first (mkdir -p "
                                f"{out.parent}) or choose another --out.")


def check_out_folder(out: Path) -> None:
    """--out for csv/parquet reports: a folder (created if missing), not a file."""
    probe = out
    while not (probe.exists() or probe.is_symlink()) and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "it is a file" if probe == out else f"{probe} is a file"
        raise OutputPathInvalid(out, where + ", but --format csv and parquet write one "
                                "file per report section into a folder",
                                "Pass a folder path (it is created if missing), or "
                                "use --format json to write one file.")


def _connect(lake: Path | None, config_path: Path | None, threshold: float,
             reply_hours: float, keywords_dir: Path | None
             ) -> tuple[Path, duckdb.DuckDBPyConnection]:
    folder = lake_folder(lake, config_path)
    con = connect(folder, threshold=threshold, reply_hours=reply_hours,
                  keywords_dir=keywords_dir)
    return folder, con


def _format_option(choices: tuple[str, ...], default: str) -> Callable[..., Any]:
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=default,
        show_default=True, help="Output format.",
    )


def _out_option(help_text: str) -> Callable[..., Any]:
    return click.option(
        "--out", type=click.Path(path_type=Path), default=None, help=help_text
    )


@click.command()
@lake_option
@scoring_options
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Rows in each top-N section.")
@_format_option(("table", "json", "csv", "parquet"), "table")
@_out_option("json: a file (default stdout); csv/parquet: a folder that receives "
             "one file per section.")
def report(lake: Path | None, config_path: Path | None, threshold: float,
           reply_hours: float, keywords_dir: Path | None, top: int, fmt: str,
           out: Path | None) -> None:
    """Where the money is: totals, top chats and senders, category mix, and the top
    (and unanswered) opportunities.

    Example: walake report --top 5 --format json --out report.json
    """
    if out is not None and fmt in ("csv", "parquet"):
        check_out_folder(out)
    elif fmt == "json":
        check_out_file(out)
    folder, con = _connect(lake, config_path, threshold, reply_hours, keywords_dir)
    with con:
        if fmt == "table":
            print_report(Console(), folder, top=top, con=con)
            return
        written = write_report(build_report(con, top=top), fmt, out)
    for path in written:
        click.echo(f"wrote {path}", err=True)


@click.command("export-chat")
@click.argument("chat")
@lake_option
@scoring_options
@_format_option(("json", "csv", "parquet"), "json")
@_out_option("File to write (default stdout; parquet needs it).")
def export_chat(chat: str, lake: Path | None, config_path: Path | None,
                threshold: float, reply_hours: float, keywords_dir: Path | None,
                fmt: str, out: Path | None) -> None:
    """Write one chat's messages with their scores, oldest first.

    CHAT is a chat id, or a chat name (exact, case-insensitive, else a unique part).
    CSV joins the categories and keywords lists with '; '.

    Example: walake export-chat "Founders group" --format csv --out founders.csv
    """
    check_out_file(out)
    _, con = _connect(lake, config_path, threshold, reply_hours, keywords_dir)
    with con:
        frame = chat_messages(con, chat)
    write_frame(frame, fmt, out)
    if out is not None:
        click.echo(f"wrote {frame.height:,} message(s) to {out}", err=True)


@click.command()
@click.argument("query", required=False)
@lake_option
@scoring_options
@_format_option(("table", "json", "csv", "parquet"), "table")
@_out_option("File to write (default stdout; parquet needs it).")
@click.option("--limit", type=click.IntRange(min=1, max=10_000_000), default=50, show_default=True,
              help="Rows shown by --format table.")
@click.option("--setup-script", "setup_script_flag", is_flag=True,
              help="Print the SQL that creates every view, for the DuckDB CLI: "
              "duckdb -cmd \"$(walake sql --setup-script --lake lake)\"")
def sql(query: str | None, lake: Path | None, config_path: Path | None,
        threshold: float, reply_hours: float, keywords_dir: Path | None, fmt: str,
        out: Path | None, limit: int, setup_script_flag: bool) -> None:
    """Run a query on the lake's views (messages, chats, message_scores,
    opportunities, unanswered_opportunities, chat_summary, sender_summary,
    activity_daily, activity_hour_of_week, category_weekly, category_mix,
    monetization_summary).

    Example: walake sql "select chat_name, opportunities from chat_summary limit 5"
    """
    if setup_script_flag:
        folder = lake_folder(lake, config_path)
        click.echo(setup_script(folder, threshold=threshold, reply_hours=reply_hours,
                                keywords_dir=keywords_dir), nl=False)
        return
    if not query:
        raise click.UsageError(
            "Give a query, e.g. walake sql \"select * from monetization_summary\", "
            "or --setup-script."
        )
    check_reads_only(query)
    if fmt != "table":
        check_out_file(out)
    _, con = _connect(lake, config_path, threshold, reply_hours, keywords_dir)
    with con:
        try:
            relation = con.sql(query)
            frame = relation.pl() if relation is not None else None
        except duckdb.Error as exc:
            raise QueryFailed(query, str(exc)) from exc
    if frame is None:
        click.echo("ok (the statement returned no rows)", err=True)
        return
    if fmt == "table":
        Console().print(rich_table(frame, limit=limit))
        return
    write_frame(frame, fmt, out)


commands = [report, export_chat, sql]
