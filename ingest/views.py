"""DuckDB views over the lake: one loader for the CLI, notebooks and the DuckDB CLI.

Everything is rebuilt from the manifest on each connection, in memory: only committed
batches are read (files on disk that the manifest does not list are ignored), nothing
with an absolute path is stored, so the lake can be moved or copied freely, and an
in-memory connection takes no file lock while an ingest is writing.

`setup_script(lake)` is the whole setup as one SQL text; `connect(lake)` runs it on a
fresh in-memory connection, and the plain DuckDB CLI can run the same text:

    duckdb -cmd "$(walake sql --setup-script --lake lake)"
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from ingest.errors import IngestError, LakeFileMissing
from ingest.lake.files import parquet_looks_whole
from ingest.lake.manifest import Manifest
from ingest.monitor_schema import ALERT_SCHEMA
from ingest.schema import MESSAGE_SCHEMA

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
DEFAULT_KEYWORDS_DIR = SQL_DIR / "keywords"
LAKE_KEYWORDS_DIR = "keywords"  # <lake>/keywords/*.csv replaces the defaults

DEFAULT_THRESHOLD = 2.0
DEFAULT_REPLY_HOURS = 24.0

# View files under sql/, applied in this order (a view binds its inputs when created).
VIEW_ORDER: tuple[str, ...] = (
    "base/messages",
    "base/chats",
    "scoring/keyword_forms",
    "scoring/keyword_pattern",
    "scoring/message_scores",
    "marts/opportunities",
    "marts/unanswered_opportunities",
    "marts/chat_summary",
    "marts/sender_summary",
    "marts/activity_daily",
    "marts/activity_hour_of_week",
    "marts/category_weekly",
    "marts/category_mix",
    "marts/monetization_summary",
)

# Fields of keyword_pattern's lookup, each also set as its own variable keyword_<field>.
# NOTE: a lambda that reads one field of a constant struct materialises the whole
# struct (all of its lists and maps) for every chunk it runs on; separate variables
# make scoring about 3% cheaper.
KEYWORD_LOOKUP_FIELDS = (
    "form_ids", "form_id", "shared_forms", "names", "categories", "weights",
    "category_names", "category_bits", "category_sets",
)

# Statements run right after a view file, by view name.
AFTER_VIEW: dict[str, str] = {
    # Scoring needs the pattern as a constant (a per-row pattern is compiled per row).
    "keyword_pattern": (
        "set variable keyword_pattern = (select pattern from keyword_pattern);\n"
        "set variable keyword_lookup = (select lookup from keyword_pattern);\n"
        + "\n".join(
            f"set variable keyword_{field} = getvariable('keyword_lookup').{field};"
            for field in KEYWORD_LOOKUP_FIELDS
        )
    ),
}


@dataclass(frozen=True)
class LakeTable:
    """A base relation read from one manifest layer: `name` over `layer`'s Parquet.

    With no committed file it is an empty table typed by `schema`, so the views
    built on it work on an empty lake. Extra lake tables (e.g. the monitor's
    alerts) are added to LAKE_TABLES; their views go into VIEW_ORDER.
    """

    name: str
    layer: str
    schema: dict[str, pl.DataType]


LAKE_TABLES: list[LakeTable] = [
    LakeTable("lake_messages", "messages", MESSAGE_SCHEMA),
    # One row per alert the monitor raised (one per message_key, ever)
    LakeTable("alerts", "alerts", ALERT_SCHEMA),
]


class KeywordsInvalid(IngestError):
    """A keyword file cannot be used as it is."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(
            f"Keyword file {path}: {problem}. Fix the file (columns: category, weight, "
            "keyword, forms; see sql/keywords/README.md) and run the command again."
        )


class LakeFileDamaged(IngestError):
    """The manifest lists a batch file that is truncated or not Parquet any more."""

    def __init__(self, lake: Path, damaged: list[Path]) -> None:
        self.damaged = damaged
        shown = ", ".join(str(p.relative_to(lake)) for p in damaged[:3])
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        super().__init__(
            f"The lake {lake} has damaged batch file(s) (truncated or overwritten): "
            f"{shown}{more}. Run 'walake rebuild --lake {lake}' to re-derive them "
            "from the raw batches, or restore the files from a backup."
        )


# Keywords


@dataclass(frozen=True)
class Keyword:
    lang: str
    category: str
    weight: float
    keyword: str
    forms: tuple[str, ...]
    inflect: bool  # accept English endings (deals, hired, selling)


def _weight(path: Path, line: int, text: str | None) -> float:
    """A category weight: a finite number of 0 or more."""
    try:
        weight = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise KeywordsInvalid(
            path, f"line {line}: weight {text!r} is not a number"
        ) from None
    if not math.isfinite(weight) or weight < 0:
        raise KeywordsInvalid(
            path, f"line {line}: weight {text!r} must be a finite number of 0 or more"
        )
    return weight


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def keyword_files(lake: Path, keywords_dir: Path | None = None) -> list[Path]:
    """The keyword CSVs in use: the given folder, else <lake>/keywords/, else sql/."""
    if keywords_dir is not None:
        files = sorted(Path(keywords_dir).glob("*.csv"))
        if not files:
            raise KeywordsInvalid(Path(keywords_dir), "the folder holds no *.csv file")
        return files
    own = sorted((lake / LAKE_KEYWORDS_DIR).glob("*.csv"))
    return own or sorted(DEFAULT_KEYWORDS_DIR.glob("*.csv"))


def read_keywords(files: Iterable[Path]) -> list[Keyword]:
    """Parse and check keyword CSVs; one weight per category across all files."""
    keywords: list[Keyword] = []
    weights: dict[str, tuple[float, Path]] = {}
    for path in files:
        lang = path.stem.lower()
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"category", "weight", "keyword"} - set(reader.fieldnames or [])
            if missing:
                raise KeywordsInvalid(path, f"missing column(s) {sorted(missing)}")
            for line, row in enumerate(reader, start=2):
                category = _clean(row["category"] or "")
                keyword = _clean(row["keyword"] or "")
                if not category and not keyword:
                    continue
                if not category or not keyword:
                    raise KeywordsInvalid(
                        path, f"line {line} needs a category and keyword"
                    )
                weight = _weight(path, line, row["weight"])
                seen = weights.setdefault(category, (weight, path))
                if seen[0] != weight:
                    raise KeywordsInvalid(
                        path,
                        f"line {line}: category {category!r} has weight {weight:g} "
                        f"but {seen[1].name} gives it {seen[0]:g}; "
                        "use one weight per category",
                    )
                extra = tuple(
                    _clean(f) for f in (row.get("forms") or "").split("|") if f.strip()
                )
                keywords.append(
                    Keyword(lang, category, weight, keyword, extra,
                            lang.startswith("en"))
                )
    if not keywords:
        raise KeywordsInvalid(Path(", ".join(map(str, files)) or "-"), "no keywords")
    return keywords


# SQL text


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB type of a Polars type used in the lake schemas."""
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    simple: dict[type, str] = {
        pl.String: "varchar", pl.Boolean: "boolean", pl.Int32: "integer",
        pl.Int64: "bigint", pl.Float64: "double", pl.Date: "date",
    }
    for kind, name in simple.items():
        if isinstance(dtype, kind):
            return name
    raise TypeError(f"no DuckDB type for {dtype!r}; add it to duckdb_type()")


def lake_table_sql(
    table: LakeTable, files: list[Path], batch_ids: Collection[str] | None = None
) -> str:
    """An empty typed table, plus a view over the committed files when there are any.

    With `batch_ids`, only rows of those batches: a compacted file holds many.
    """
    columns = ", ".join(f"{name} {duckdb_type(t)}" for name, t in table.schema.items())
    empty = f"{table.name}_empty"
    sql = f"create or replace table {empty} ({columns});\n"
    if not files:
        return sql + f"create or replace view {table.name} as select * from {empty};\n"
    paths = ", ".join(_quote(p.as_posix()) for p in files)
    where = ""
    if batch_ids is not None:
        wanted = ", ".join(_quote(b) for b in sorted(batch_ids)) or "null"
        where = f"\nwhere batch_id in ({wanted})"
    return sql + (
        f"create or replace view {table.name} as\n"
        f"select * from {empty}\nunion all by name\n"
        f"select * from read_parquet([{paths}], union_by_name = true, "
        f"hive_partitioning = false){where};\n"
    )


def key_check_sql(
    lake: Path,
    batch_ids: Collection[str] | None = None,
    manifest: Manifest | None = None,
) -> str:
    """Views lake_messages_checked and lake_messages_unchecked: the rows of
    lake_messages split by whether their batch landed with `new_keys`.

    A batch is marked when, as it landed, none of its message_keys was in the lake or
    twice in it (LakeWriter.commit); a rebuild clears the mark. So a key with copies
    has one in an unmarked batch, and the `messages` view only looks for copies of
    the keys unmarked batches hold. Batches of older lakes have no mark: all of them
    are unchecked, and `messages` looks at every key as before. A relation with no
    rows is `where false`, so DuckDB drops the work on it at planning.
    """
    manifest = manifest or Manifest.load(lake)
    by_file: dict[str, dict[bool, list[str]]] = {}
    for batch_id, info in sorted(manifest.batches.items()):
        relative = info.get("files", {}).get("messages")
        if not relative or (batch_ids is not None and batch_id not in batch_ids):
            continue
        marked = info.get("new_keys") is True
        by_file.setdefault(relative, {True: [], False: []})[marked].append(batch_id)
    sql = ""
    for name, marked in (("lake_messages_checked", True),
                         ("lake_messages_unchecked", False)):
        whole: list[Path] = []  # files of this kind's batches only
        shared: list[Path] = []  # files that also hold the other kind's batches
        marked_in_shared: list[str] = []
        for relative, groups in by_file.items():
            if not groups[marked]:
                continue
            path = (lake / relative).resolve()
            if groups[not marked] or batch_ids is not None:
                shared.append(path)
                marked_in_shared.extend(groups[True])
            else:
                whole.append(path)
        if batch_ids is not None:  # lake_messages holds only these batches' rows
            mine = [b for groups in by_file.values() for b in groups[marked]]
            where = _batch_filter("in", mine)
        else:  # rows of a shared file that no marked batch owns are unchecked
            where = _batch_filter("in" if marked else "not in", marked_in_shared)
        selects = ["select * from lake_messages_empty"]
        for paths, condition in ((whole, ""), (shared, where)):
            if paths:
                files = ", ".join(_quote(p.as_posix()) for p in paths)
                selects.append(
                    f"select * from read_parquet([{files}], union_by_name = true, "
                    f"hive_partitioning = false){condition}"
                )
        if len(selects) == 1:
            selects[0] += " where false"
        body = "\nunion all by name\n".join(selects)
        sql += f"create or replace view {name} as\n{body};\n"
    return sql


def _batch_filter(test: str, batch_ids: Collection[str]) -> str:
    wanted = ", ".join(_quote(b) for b in sorted(set(batch_ids))) or "null"
    if test == "not in":
        return f"\nwhere batch_id is null or batch_id not in ({wanted})"
    return f"\nwhere batch_id in ({wanted})"


def keywords_sql(keywords: list[Keyword]) -> str:
    sql = (
        "create or replace table keywords (lang varchar, category varchar, "
        "weight double, keyword varchar, extra_forms varchar[], inflect boolean);\n"
    )
    rows = []
    for k in keywords:
        forms = "[" + ", ".join(_quote(f) for f in k.forms) + "]::varchar[]"
        rows.append(
            f"({_quote(k.lang)}, {_quote(k.category)}, {k.weight!r}, "
            f"{_quote(k.keyword)}, {forms}, {str(k.inflect).lower()})"
        )
    return sql + "insert into keywords values\n    " + ",\n    ".join(rows) + ";\n"


def view_sql(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    return path.read_text(encoding="utf-8").strip().rstrip(";") + ";\n"


def committed_files(
    lake: Path,
    layer: str,
    batch_ids: Collection[str] | None = None,
    manifest: Manifest | None = None,
) -> list[Path]:
    """The manifest's files of one layer (of `batch_ids` only, when given); fails if
    a listed file is gone."""
    data = (manifest or Manifest.load(lake)).data
    manifest = Manifest(lake, {**data})  # its batches may be narrowed below
    if batch_ids is not None:
        manifest.data["batches"] = {
            b: info for b, info in manifest.batches.items() if b in batch_ids
        }
    files = [p.resolve() for p in manifest.parquet_files(layer)]
    missing = [p for p in files if not p.is_file()]
    if missing:
        _, rebuildable = manifest.missing_files(layer)
        raise LakeFileMissing(lake.resolve(), missing, rebuildable)
    damaged = [p for p in files if not parquet_looks_whole(p)]
    if damaged:
        raise LakeFileDamaged(lake.resolve(), damaged)
    return files


def setup_script(
    lake: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    reply_hours: float = DEFAULT_REPLY_HOURS,
    keywords_dir: Path | None = None,
    message_batches: Collection[str] | None = None,
) -> str:
    """All of the setup as SQL: settings, keywords, lake tables and views, in order.

    `message_batches` limits the messages to those batches (the monitor scores only
    what a tick landed); every other lake table is read whole.
    """
    lake = Path(lake)
    parts = [
        f"-- walake views for {lake.resolve()} (generated from its manifest)\n",
        "set autoinstall_known_extensions = false;\n",
        "set TimeZone = 'UTC';\n",
        f"set variable opportunity_threshold = {float(threshold)!r};\n",
        f"set variable reply_window_hours = {float(reply_hours)!r};\n",
        keywords_sql(read_keywords(keyword_files(lake, keywords_dir))),
    ]
    manifest = Manifest.load(lake)  # one reading for every table: one state of it
    for table in LAKE_TABLES:
        only = message_batches if table.layer == "messages" else None
        files = committed_files(lake, table.layer, only, manifest)
        parts.append(lake_table_sql(table, files, only))
    parts.append(key_check_sql(lake, message_batches, manifest))
    for name in VIEW_ORDER:
        parts.append(view_sql(name))
        after = AFTER_VIEW.get(name.rsplit("/", 1)[-1])
        if after:
            parts.append(after + "\n")
    return "".join(parts)


def apply_views(
    con: duckdb.DuckDBPyConnection,
    lake: Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    reply_hours: float = DEFAULT_REPLY_HOURS,
    keywords_dir: Path | None = None,
    message_batches: Collection[str] | None = None,
) -> None:
    """Create the keyword table, lake tables and all views on `con` (idempotent)."""
    script = setup_script(
        lake, threshold=threshold, reply_hours=reply_hours, keywords_dir=keywords_dir,
        message_batches=message_batches,
    )
    con.execute(script)


def connect(
    lake: Path,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    reply_hours: float = DEFAULT_REPLY_HOURS,
    keywords_dir: Path | None = None,
    message_batches: Collection[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every walake view over `lake`.

    Rebuilt from the manifest each call, so call it again (or `apply_views`) to
    see batches committed since. Notebooks: `con = connect(Path("lake"), threads=1)`.
    """
    config: dict[str, str | int | bool] = {"autoinstall_known_extensions": False}
    if threads is not None:
        config["threads"] = threads
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(":memory:", config=config)
    try:
        apply_views(
            con, lake, threshold=threshold, reply_hours=reply_hours,
            keywords_dir=keywords_dir, message_batches=message_batches,
        )
    except BaseException:
        con.close()
        raise
    return con


def view_names() -> list[str]:
    """The views walake defines, in creation order."""
    return [name.rsplit("/", 1)[-1] for name in VIEW_ORDER]


def lake_connection(
    lake: Path | str = "lake", **options: object
) -> duckdb.DuckDBPyConnection:
    """`connect` with the lake as a plain path (default ./lake), for notebooks."""
    return connect(Path(lake), **options)  # type: ignore[arg-type]

__all__ = [
    "DEFAULT_REPLY_HOURS",
    "DEFAULT_THRESHOLD",
    "LAKE_TABLES",
    "VIEW_ORDER",
    "KeywordsInvalid",
    "LakeFileDamaged",
    "LakeFileMissing",
    "LakeTable",
    "apply_views",
    "connect",
    "keyword_files",
    "lake_connection",
    "read_keywords",
    "setup_script",
    "view_names",
]
