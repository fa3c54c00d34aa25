"""Message rows in columns: the page frame paged sources answer with, and its keys.

A page frame has the source columns of `ingest.schema` (typed as the lake types
them) plus `second`, the local wall second as text (`YYYY-MM-DD HH:MM:SS`), which
is what windows, cursors and identity keys compare. `message_key` stays null until
the walk keys the rows (`with_keys`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl

from ingest.schema import (
    KEY_SEPARATOR,
    SOURCE_COLUMNS,
    SOURCE_SCHEMA,
    key_texts,
    local_second,
)

PAGE_SCHEMA: dict[str, pl.DataType] = {**SOURCE_SCHEMA, "second": pl.String()}


def empty_page() -> pl.DataFrame:
    return pl.DataFrame(schema=PAGE_SCHEMA)


def source_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The source columns of row dicts, typed (a missing field is null)."""
    columns = {name: [row.get(name) for row in rows] for name in SOURCE_COLUMNS}
    return pl.DataFrame(columns, schema=SOURCE_SCHEMA, strict=False)


def page_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A page frame from row dicts (sources that decode row by row); a row without
    `_second` takes it from `sent_at_local`."""
    if not rows:
        return empty_page()
    seconds = [row.get("_second") or local_second(row["sent_at_local"]) for row in rows]
    return source_frame(rows).with_columns(pl.Series("second", seconds, pl.String()))


def page_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Row dicts of a page frame, `second` as `_second` (for row-wise readers)."""
    return frame.rename({"second": "_second"}).to_dicts()


def with_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill message_key; identical (second, text) rows get ordinals 0, 1, ...

    The frame must hold whole seconds of one chat (every row of each second in it),
    which is what makes ordinals agree with any other pull of the same seconds.
    Rows are numbered in frame order, as `schema.OrdinalCounter` numbers them.
    """
    if frame.is_empty():
        return frame
    keyed = frame.with_columns(key_texts(frame["text"]).alias("_ktext"))
    # Ordinals: 0 for a row whose (second, text) is unique in the frame, which is
    # nearly every row; the few repeats are numbered in order
    base = keyed.select(pl.concat_str(
        pl.col("chat_id"), pl.col("second"), pl.col("_ktext"), separator=KEY_SEPARATOR
    ))[:, 0]
    ordinals = pl.zeros(len(base), pl.Int64, eager=True)
    repeated = base.is_duplicated()
    if repeated.any():
        where = repeated.arg_true()
        seen: dict[str, int] = {}
        numbers = []
        for ident in base.gather(where).to_list():
            numbers.append(seen.get(ident, 0))
            seen[ident] = numbers[-1] + 1
        ordinals = ordinals.scatter(where, numbers)
    idents = (base + KEY_SEPARATOR + ordinals.cast(pl.String)).cast(pl.Binary).to_list()
    blake = hashlib.blake2b
    keys = [blake(i, digest_size=16).hexdigest() for i in idents]
    return keyed.drop("_ktext").with_columns(pl.Series("message_key", keys, pl.String))


def keys_at(frame: pl.DataFrame, second: str) -> list[str]:
    """The message keys of the rows at one second."""
    return frame.filter(pl.col("second") == second)["message_key"].to_list()


def between(frame: pl.DataFrame, lo: str | None, hi_excl: str | None) -> pl.DataFrame:
    """Rows with lo <= second < hi_excl (a missing bound does not limit)."""
    wanted = pl.lit(True)
    if lo is not None:
        wanted &= pl.col("second") >= lo
    if hi_excl is not None:
        wanted &= pl.col("second") < hi_excl
    return frame if lo is None and hi_excl is None else frame.filter(wanted)


def newest_first(frame: pl.DataFrame) -> pl.DataFrame:
    """Sorted by second, newest first; rows of one second keep their order."""
    return frame.sort("second", descending=True, maintain_order=True)


def offsets_by_second(frame: pl.DataFrame, seconds: set[str] | None = None
                      ) -> dict[str, int]:
    """second -> UTC offset (minutes) of the rows that have one (of `seconds`)."""
    known = frame.filter(pl.col("utc_offset_minutes").is_not_null())
    if seconds is not None:
        known = known.filter(pl.col("second").is_in(list(seconds)))
    pairs = known.select("second", "utc_offset_minutes").unique("second", keep="last",
                                                                 maintain_order=True)
    return dict(zip(pairs["second"].to_list(), pairs["utc_offset_minutes"].to_list(),
                    strict=True))
