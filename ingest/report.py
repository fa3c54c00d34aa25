"""The monetization report, chat exports and query output, from the lake's views.

Everything here reads an `ingest.views.connect` connection; the CLI commands in
`ingest/cli/report.py` are thin shells over these functions.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import polars as pl
from rich.console import Console
from rich.table import Table

from ingest.errors import IngestError
from ingest.terminal import cell, stdout_text

FORMATS = ("table", "json", "csv", "parquet")
LIST_SEPARATOR = "; "  # list cells (categories, keywords) in CSV
TEXT_WIDTH = 70  # characters of message text shown in terminal tables


class LakeNotFound(IngestError):
    def __init__(self, lake: Path) -> None:
        self.lake = lake
        super().__init__(
            f"No lake folder at {lake}. Pass --lake with the folder your imports "
            "write to (it holds manifest.json), or import something first."
        )


class ChatNotFound(IngestError):
    def __init__(self, chat: str) -> None:
        super().__init__(
            f"No chat matches \"{chat}\" (by id, or by name, case-insensitive). List "
            "the chats with: walake sql \"select chat_id, chat_name from chats\""
        )


class ChatAmbiguous(IngestError):
    def __init__(self, chat: str, matches: list[tuple[str, str | None]]) -> None:
        shown = ", ".join(f"{cid} ({name})" for cid, name in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        super().__init__(
            f"\"{chat}\" matches {len(matches)} chats: {shown}{more}. Pass the chat "
            "id instead (the first value of each pair)."
        )


class ChatNameEmpty(IngestError):
    def __init__(self) -> None:
        super().__init__(
            "The chat to export is empty: give its id or (part of) its name. List the "
            "chats with: walake sql \"select chat_id, chat_name from chats\""
        )


class OutputNeeded(IngestError):
    def __init__(self, fmt: str, what: str) -> None:
        super().__init__(
            f"--format {fmt} writes {what}; add --out PATH to say where."
        )


class QueryFailed(IngestError):
    def __init__(self, query: str, detail: str) -> None:
        super().__init__(
            f"The query failed: {detail.strip().splitlines()[0]}\n  query: "
            f"{query[:200]}\nList the views with: walake sql \"show tables\"; "
            "their columns with: walake sql \"describe messages\"."
        )


class QueryNotRead(IngestError):
    """`walake sql` only reads: a statement that writes or attaches is refused."""

    def __init__(self, query: str, kind: str) -> None:
        super().__init__(
            f"walake sql runs queries that read (select, describe, explain, pragma); "
            f"this one holds a statement of type {kind}, refused so nothing can write "
            "into the lake.\n"
            f"  query: {query[:200]}\nWrite results with --format csv|json|parquet "
            "--out FILE, or use the DuckDB CLI: duckdb -cmd \"$(walake sql "
            "--setup-script)\"."
        )


class QueryNotOne(IngestError):
    """Only the last of several statements would print: one at a time."""

    def __init__(self, query: str, count: int) -> None:
        super().__init__(
            f"walake sql runs one query at a time; this holds {count} statements "
            f"(separated by ';').\n  query: {query[:200]}\nRun each on its own."
        )


READ_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA"}  # duckdb.StatementType names


def check_reads_only(query: str) -> None:
    """Refuse a query with any statement that is not a read (COPY, ATTACH, ...)."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryFailed(query, str(exc)) from exc
    for statement in statements:
        if statement.type.name not in READ_STATEMENTS:
            raise QueryNotRead(query, statement.type.name)
    if len(statements) > 1:
        raise QueryNotOne(query, len(statements))


def check_lake(lake: Path) -> Path:
    """The lake folder, which must exist (an existing folder with no batch is empty)."""
    if not lake.is_dir():
        raise LakeNotFound(lake)
    return lake


# The report


@dataclass(frozen=True)
class Report:
    """The sections of the monetization report, each a Polars frame, in print order."""

    sections: dict[str, pl.DataFrame]

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.sections[name]


SECTION_SQL: dict[str, str] = {
    "summary": "select * from monetization_summary",
    "top_chats": """
        select chat_id, chat_name, messages, senders, opportunities,
            unanswered_opportunities, opportunity_score, last_opportunity_at
        from chat_summary
        where opportunities > 0
        order by opportunities desc, opportunity_score desc, chat_id
        limit $top""",
    "top_senders": """
        select sender_key, sender_name, messages, chats, opportunities,
            opportunity_score, last_opportunity_at
        from sender_summary
        where opportunities > 0
        order by opportunities desc, opportunity_score desc, sender_key
        limit $top""",
    "category_mix": "select * from category_mix",
    "top_opportunities": """
        select sent_at, chat_name, sender_name, score, categories, keywords, text,
            chat_id, message_key
        from opportunities
        order by score desc, sent_at desc, message_key
        limit $top""",
    "unanswered_opportunities": """
        select sent_at, chat_name, sender_name, score, reply_due_at, is_overdue,
            categories, text, chat_id, message_key
        from unanswered_opportunities
        order by score desc, sent_at desc, message_key
        limit $top""",
}


def build_report(con: duckdb.DuckDBPyConnection, *, top: int = 10) -> Report:
    sections = {}
    for name, sql in SECTION_SQL.items():
        params = {"top": top} if "$top" in sql else None
        sections[name] = con.sql(sql, params=params).pl()
    return Report(sections)


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data; `summary` is one object, the rest lists."""
    data: dict[str, Any] = {}
    for name, frame in report.sections.items():
        rows = rows_json(frame)
        data[name] = rows[0] if name == "summary" else rows
    return data


def write_report(report: Report, fmt: str, out: Path | None,
                 stream: IO[str] | None = None) -> list[Path]:
    """Write the report as one JSON document, or one CSV/Parquet file per section."""
    if fmt == "json":
        text = json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n"
        if out is None:
            stream = stream or sys.stdout
            stream.write(stdout_text(text, fmt, stream))
            return []
        write_private(out, text.encode("utf-8"))
        return [out]
    if out is None:
        raise OutputNeeded(fmt, "one file per report section into a folder")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, frame in report.sections.items():
        path = out / f"{name}.{fmt}"
        write_frame(frame, fmt, path)
        written.append(path)
    return written


def print_report(console: Console, lake: Path, *, top: int = 10,
                 con: duckdb.DuckDBPyConnection | None = None) -> Report:
    """Print the monetization report for `lake` (used by `walake report` and demo)."""
    from ingest.views import connect

    own = con is None
    con = con or connect(check_lake(lake))
    try:
        report = build_report(con, top=top)
    finally:
        if own:
            con.close()
    summary = report["summary"].row(0, named=True)
    facts = Table(title=cell(f"Monetization summary: {lake}"), show_header=False)
    facts.add_column("measure")
    facts.add_column("value", justify="right")
    for key, value in summary.items():
        facts.add_row(key.replace("_", " "), cell(_cell(value)))
    console.print(facts)
    titles = {
        "top_chats": "Top chats by opportunities",
        "top_senders": "Top senders by opportunities",
        "category_mix": "Category mix of opportunities",
        "top_opportunities": "Top opportunities",
        "unanswered_opportunities": "Unanswered opportunities",
    }
    for name, title in titles.items():
        frame = report[name].select(SCREEN_COLUMNS[name] or report[name].columns)
        if frame.is_empty() and name != "category_mix":
            console.print(f"[dim]{title}: none[/dim]")
            continue
        console.print(screen_table(frame, title))
    return report


# What the terminal shows of each section: the rest is in --format json/csv/parquet.
SCREEN_COLUMNS: dict[str, list[str]] = {
    "top_chats": ["chat_name", "messages", "senders", "opportunities",
                  "unanswered_opportunities", "last_opportunity_at"],
    "top_senders": ["sender_name", "messages", "chats", "opportunities",
                    "last_opportunity_at"],
    "category_mix": [],
    "top_opportunities": ["sent_at", "chat_name", "sender_name", "score", "text"],
    "unanswered_opportunities": ["sent_at", "chat_name", "sender_name", "score",
                                 "text"],
}


SCREEN_WIDTHS = {"chat_name": 14, "sender_name": 14, "categories": 18}


def screen_table(frame: pl.DataFrame, title: str) -> Table:
    """One line per row: long text is cut with an ellipsis, the excerpt gets the rest."""
    table = Table(title=title, title_justify="left", expand=True)
    for name, dtype in frame.schema.items():
        header = name.replace("_", " ")
        numeric = dtype.is_numeric() or dtype == pl.Boolean
        table.add_column(
            header,
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=len(header) if numeric else min(len(header), 10),
            max_width=None if name == "text" else SCREEN_WIDTHS.get(name, 24),
            ratio=1 if name == "text" else None,
        )
    for row in frame.iter_rows():
        table.add_row(*(cell(_screen_cell(v)) for v in row))
    return table


def _screen_cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %b %H:%M")
    return _cell(value)


# Chat export


EXPORT_SQL = """
select
    s.message_key, s.chat_id, s.chat_name, s.sent_at, s.sent_at_local,
    s.sender_id, s.sender_name, s.is_from_me, s.text,
    m.media_type, m.media_filename, m.source,
    s.score, s.categories, s.keywords, s.is_opportunity
from message_scores as s
inner join messages as m on s.message_key = m.message_key
where s.chat_id = $chat_id
order by s.sent_at, s.message_key
"""


def find_chat(con: duckdb.DuckDBPyConnection, chat: str) -> str:
    """The chat id for `chat`: an id, else a name (exact, then unique substring)."""
    if not chat.strip():
        raise ChatNameEmpty()
    rows = con.sql(
        "select chat_id, chat_name from chats where chat_id = $c", params={"c": chat}
    ).fetchall()
    if not rows:
        rows = con.sql(
            "select chat_id, chat_name from chats where lower(chat_name) = lower($c) "
            "order by chat_id", params={"c": chat},
        ).fetchall()
    if not rows:
        rows = con.sql(
            "select chat_id, chat_name from chats "
            "where contains(lower(chat_name), lower($c)) order by chat_id",
            params={"c": chat},
        ).fetchall()
    if not rows:
        raise ChatNotFound(chat)
    if len(rows) > 1:
        raise ChatAmbiguous(chat, rows)
    return rows[0][0]


def chat_messages(con: duckdb.DuckDBPyConnection, chat: str) -> pl.DataFrame:
    """One chat's messages with their scores, oldest first."""
    chat_id = find_chat(con, chat)
    return con.sql(EXPORT_SQL, params={"chat_id": chat_id}).pl()


# Output of frames


def plain(value: Any) -> Any:
    """A cell as JSON data: ISO 8601 times, lists kept."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def rows_json(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dicts()]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(_csv_cell(v)) for v in value)
    value = plain(value)
    return value if isinstance(value, str) else str(value)


def frame_csv(frame: pl.DataFrame) -> str:
    """CSV text: a header, ISO times, true/false, lists joined by '; ', null empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in frame.iter_rows():
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue()


def write_frame(frame: pl.DataFrame, fmt: str, out: Path | None,
                stream: IO[str] | None = None) -> None:
    """Write rows as json (an array of objects), csv or parquet, to `out` or stdout."""
    if fmt == "parquet":
        if out is None:
            raise OutputNeeded(fmt, "a binary file")
        with private_file(out) as handle:
            frame.write_parquet(handle, compression="zstd")
        return
    if fmt == "json":
        text = json.dumps(rows_json(frame), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        text = frame_csv(frame)
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    if out is None:
        stream = stream or sys.stdout
        stream.write(stdout_text(text, fmt, stream))
    else:
        write_private(out, text.encode("utf-8"))


def private_file(path: Path) -> IO[bytes]:
    """`path` opened for writing, readable by its owner only (0600).

    The files hold message text: a new file is created 0600, and an existing regular
    file is narrowed to 0600 before anything is written to it.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, data: bytes) -> None:
    with private_file(path) as handle:
        handle.write(data)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(map(str, value))
    text = str(value).replace("\n", " ")
    return text if len(text) <= TEXT_WIDTH else text[: TEXT_WIDTH - 1] + "…"


def rich_table(frame: pl.DataFrame, *, title: str | None = None,
               limit: int | None = None) -> Table:
    table = Table(title=title)
    for name, dtype in frame.schema.items():
        table.add_column(cell(name), justify="right" if dtype.is_numeric() else "left")
    shown = frame if limit is None else frame.head(limit)
    for row in shown.iter_rows():
        table.add_row(*(cell(_cell(v)) for v in row))
    if limit is not None and frame.height > limit:
        table.caption = f"{frame.height - limit:,} more row(s); use --limit or --format"
    return table
