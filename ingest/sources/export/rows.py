"""Lake rows of an export's messages, built as typed columns (the writer's frames).

Columns are filled from the parsed messages with one pass each and the identity key is
computed in the same file order as one `schema.OrdinalCounter` would, so rows built
chunk by chunk get the keys of a single pass.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

import polars as pl

from ingest.schema import (
    KEY_SEPARATOR,
    MESSAGE_SCHEMA,
    SOURCE_COLUMNS,
    key_text,
    key_texts,
    local_second,
)
from ingest.sources.export.classify import MEDIA_TYPES
from ingest.sources.export.parse import Message, is_phone_number
from ingest.sources.export.zones import HourlyOffsets

SOURCE = "export"
SOURCE_SCHEMA = {name: MESSAGE_SCHEMA[name] for name in SOURCE_COLUMNS}


@dataclass(frozen=True)
class ChatTarget:
    """Which lake chat a file's rows belong to, who 'me' is, and the clock's zone."""

    chat_id: str
    chat_name: str
    me: str | None
    zone: tzinfo


class KeyAssigner:
    """What one `schema.OrdinalCounter` over a file does, without its per-row strftime.

    The key is `schema.message_key`, built from the same helpers; a test pins the two
    equal. Rows arrive in file order, where neighbours share their second (Android
    exports have minutes only), so the formatted second of the last row is reused.
    """

    def __init__(self, chat_id: str) -> None:
        self.prefix = chat_id + KEY_SEPARATOR
        self.seen: Counter[tuple[str, str]] = Counter()
        self.last: tuple[datetime | None, str] = (None, "")
        self.ordinals: list[int] = []  # of the rows of the last `keys` call

    def keys(self, stamps: list[datetime], texts: list[str]) -> list[str]:
        seen, prefix, join = self.seen, self.prefix, KEY_SEPARATOR.join
        blake2b = hashlib.blake2b
        last_local, second = self.last
        found, ordinals = [], []
        for local, text in zip(stamps, texts):
            if local != last_local:
                last_local, second = local, _second(local)
            # key_text is NFC + CRLF->LF + strip; for ASCII without CR only strip acts.
            if text.isascii() and "\r" not in text:
                text = text.strip()
            else:
                text = key_text(text)
            ident = (second, text)
            ordinal = seen[ident]
            seen[ident] = ordinal + 1
            ordinals.append(ordinal)
            digest = blake2b((prefix + join((second, text, str(ordinal)))).encode(),
                             digest_size=16)
            found.append(digest.hexdigest())
        self.last = (last_local, second)
        self.ordinals = ordinals
        return found


def _second(local: datetime) -> str:
    # str() is strftime's "%Y-%m-%d %H:%M:%S" for whole seconds, and 8x faster.
    if local.microsecond == 0 and local.year >= 1000:
        return str(local)
    return local_second(local)


def lake_text(message: Message) -> str:
    """The row text: a media placeholder becomes "" (MCP's content); a caption stays.

    A document's title is not text: MCP and the bridge store "" for every media row,
    so the text (and with it the message key) stays "" there too. The title goes to
    media_filename when the export names no file (`lake_filename`).
    """
    if message.is_media:
        return message.caption or ""
    return message.text


def lake_text_expr() -> pl.Expr:
    """`lake_text` over a message frame's columns (fast path, `file_key_inputs`)."""
    return pl.when(pl.col("is_media")).then(pl.col("caption").fill_null("")) \
        .otherwise(pl.col("text"))


def lake_filename(message: Message) -> str | None:
    """The attached file's name; for a media-less export (iOS "TITLE • N pages
    document omitted"), the document's title, the only name the file has."""
    if message.attachment or not message.is_media:
        return message.attachment
    return message.title or None


def lake_filename_expr() -> pl.Expr:
    """`lake_filename` over a message frame's columns."""
    return pl.when(pl.col("attachment").is_null() & pl.col("is_media")) \
        .then(pl.col("title")).otherwise(pl.col("attachment"))


def build_frame(
    messages: list[Message],
    target: ChatTarget,
    is_group: bool,
    sizes: dict[str, int],
    keys: KeyAssigner,
) -> pl.DataFrame:
    """The typed SOURCE_COLUMNS of `messages`, in file order, with message_key."""
    stamps = [m.timestamp for m in messages]
    texts = [lake_text(m) for m in messages]
    authors = [m.author for m in messages]
    files = [m.attachment for m in messages]
    offsets = HourlyOffsets(target.zone)
    me = fold_name(target.me) if target.me else None
    columns = {
        "message_key": keys.keys(stamps, texts),
        "sender_id": [_sender_id(a) for a in authors],
        "sender_name": authors,
        "is_from_me": [None if me is None or a is None else fold_name(a) == me
                       for a in authors],
        "sent_at_local": stamps,
        "utc_offset_minutes": [offsets.minutes_at(t) for t in stamps],
        "text": texts,
        "media_type": [MEDIA_TYPES.get(m.media_kind or "", "unknown")
                       if m.is_media else None for m in messages],
        "media_filename": [lake_filename(m) for m in messages],
        "media_size": [sizes.get(f) if f else None for f in files],
        "is_system": [m.is_system for m in messages],
        "is_deleted": [m.is_deleted for m in messages],
        "is_edited": [m.is_edited for m in messages],
    }
    frame = pl.DataFrame(columns, schema={n: SOURCE_SCHEMA[n] for n in columns})
    return frame.with_columns(
        pl.lit(SOURCE, pl.String()).alias("source"),
        pl.lit(None, pl.String()).alias("source_message_id"),
        pl.lit(target.chat_id, pl.String()).alias("chat_id"),
        pl.lit(target.chat_name, pl.String()).alias("chat_name"),
        pl.lit(is_group, pl.Boolean()).alias("is_group"),
        (pl.col("sent_at_local") - pl.duration(minutes=pl.col("utc_offset_minutes")))
        .dt.replace_time_zone("UTC").alias("sent_at"),
    ).select(SOURCE_COLUMNS)


@lru_cache(maxsize=4096)
def _sender_id(author: str | None) -> str | None:
    """The bare number, as MCP stores senders, when the author is a phone number."""
    if author is None or not is_phone_number(author):
        return None
    return "".join(ch for ch in author if ch.isdigit())


@lru_cache(maxsize=4096)
def fold_name(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold().strip()


def lake_columns(
    messages: pl.DataFrame,
    target: ChatTarget,
    is_group: bool,
    sizes: dict[str, int],
) -> pl.DataFrame:
    """`build_frame` for a whole fast-path message frame, without message_key.

    Per-value Python (sender ids, name folding, zone offsets) runs once per distinct
    author or local hour; `key_text` and `_second` inputs are added as `_second` and
    `_key_text` for `assign_keys`.
    """
    authors = messages["author"].drop_nulls().unique().to_list()
    me = fold_name(target.me) if target.me else None
    offsets = _hour_offsets(messages["timestamp"], target.zone)
    text = lake_text_expr()
    frame = messages.select(
        pl.col("author").replace_strict({a: _sender_id(a) for a in authors},
                                        default=None, return_dtype=pl.String)
        .alias("sender_id"),
        pl.col("author").alias("sender_name"),
        (pl.lit(None, pl.Boolean) if me is None else
         pl.col("author").replace_strict({a: fold_name(a) == me for a in authors},
                                         default=None, return_dtype=pl.Boolean))
        .alias("is_from_me"),
        pl.col("timestamp").alias("sent_at_local"),
        offsets.alias("utc_offset_minutes"),
        text.alias("text"),
        pl.when(pl.col("is_media")).then(
            pl.col("media_kind").fill_null("").replace_strict(
                MEDIA_TYPES, default="unknown", return_dtype=pl.String))
        .alias("media_type"),
        lake_filename_expr().alias("media_filename"),
        pl.col("attachment").replace_strict(
            {f: sizes[f] for f in sizes}, default=None, return_dtype=pl.Int64)
        .alias("media_size"),
        "is_system", "is_deleted", "is_edited",
    )
    return frame.with_columns(
        pl.lit(SOURCE, pl.String()).alias("source"),
        pl.lit(None, pl.String()).alias("source_message_id"),
        pl.lit(target.chat_id, pl.String()).alias("chat_id"),
        pl.lit(target.chat_name, pl.String()).alias("chat_name"),
        pl.lit(is_group, pl.Boolean()).alias("is_group"),
        (pl.col("sent_at_local") - pl.duration(minutes=pl.col("utc_offset_minutes")))
        .dt.replace_time_zone("UTC").alias("sent_at"),
    ).cast({n: SOURCE_SCHEMA[n] for n in SOURCE_SCHEMA if n != "message_key"})


def _hour_offsets(stamps: pl.Series, zone: tzinfo) -> pl.Series:
    """`HourlyOffsets.minutes_at` per row: once per local hour, per time in the
    (rare) hours that hold a transition."""
    hours = stamps.dt.truncate("1h")
    offsets = HourlyOffsets(zone)
    # `HourlyOffsets._enter_hour`'s test, inlined: the hour's first and last second
    utcoffset, zero, last = zone.utcoffset, timedelta(0), timedelta(seconds=3599)
    whole: dict[datetime, int | None] = {}
    for hour in hours.unique().to_list():
        first = utcoffset(hour) or zero
        whole[hour] = int(first.total_seconds() // 60) \
            if first == (utcoffset(hour + last) or zero) else None
    minutes = hours.replace_strict(whole, default=None, return_dtype=pl.Int32)
    if minutes.null_count():
        mask = minutes.is_null()
        exact = [offsets.minutes_at(t) for t in stamps.filter(mask).to_list()]
        minutes = minutes.scatter(mask.arg_true(), pl.Series(exact, dtype=pl.Int32))
    return minutes


def key_parts(frame: pl.DataFrame) -> pl.DataFrame:
    """The key's local second and `key_text` of every row (`sent_at_local`, `text`).

    Key texts come from `schema.key_texts`.
    """
    stripped = key_texts(frame["text"])
    local = frame["sent_at_local"]
    seconds = local.dt.strftime("%Y-%m-%d %H:%M:%S")
    odd = (local.dt.year() < 1000) | (local.dt.microsecond() != 0)
    if odd.any():
        exact = [local_second(t) for t in local.filter(odd).to_list()]
        seconds = seconds.scatter(odd.arg_true(), exact)
    return pl.DataFrame({"_second": seconds, "_key_text": stripped})


def file_ordinals(frame: pl.DataFrame, rows: int = 200_000) -> pl.Series:
    """Each row's ordinal among identical (second, key text) rows, in file order."""
    return file_key_inputs(frame, rows)["_ordinal"]


def file_key_inputs(frame: pl.DataFrame, rows: int = 200_000) -> pl.DataFrame:
    """`key_parts` of every row plus its `_ordinal`: everything `assign_keys` needs.

    The ordinal is what one `schema.OrdinalCounter` over the file gives: rows whose
    (second, key text) pair has a unique 64-bit hash are 0, and the few others are
    numbered on their real strings.
    """
    if not frame.height:
        return key_parts(frame).with_columns(pl.Series("_ordinal", [], pl.Int64))
    with ThreadPoolExecutor(2, thread_name_prefix="walake-keys") as pool:
        # Slices two at a time: Polars runs without the GIL beside key_text
        parts = pl.concat(pool.map(lambda start: key_parts(frame.slice(start, rows)),
                                   range(0, frame.height, rows)))
    hashes = parts.select(pl.struct("_second", "_key_text").hash()).to_series()
    ordinal = pl.repeat(0, frame.height, dtype=pl.Int64, eager=True)
    twins = hashes.is_duplicated()
    if twins.any():
        at = twins.arg_true()
        numbered = parts[at].select(
            pl.int_range(pl.len(), dtype=pl.Int64).over("_second", "_key_text"))
        ordinal = ordinal.scatter(at, numbered.to_series())
    return parts.with_columns(ordinal.alias("_ordinal"))


def key_hashes(parts: pl.DataFrame) -> pl.Series:
    """A 64-bit hash of each row's (second, key text) pair (`key_parts`)."""
    return parts.select(pl.struct("_second", "_key_text").hash()).to_series()


class FileOrdinals:
    """`file_key_inputs`' ordinals batch by batch, knowing only the batches before.

    A row's ordinal counts the rows before it in the file with its (second, key
    text) pair. Nearly every row shares its pair's hash with no earlier row and no
    other row of its batch: its ordinal is 0. The others are numbered on the real
    pairs of all rows with their hash; for earlier batches those pairs are made
    again from the message rows (`inputs` gives `key_parts`' columns of them). Of
    an earlier batch only its hashes and the span of its seconds are kept: a batch
    whose span misses this one's shares no pair with it (in a file in time order,
    that leaves the batch just before).
    """

    def __init__(self, inputs: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        self.inputs = inputs
        self.batches: list[_SeenBatch] = []

    def take(
        self, messages: pl.DataFrame, parts: pl.DataFrame, hashes: pl.Series
    ) -> pl.Series:
        """The ordinals of the next batch (its messages, `key_parts`, `key_hashes`),
        which then counts as seen."""
        seconds = parts["_second"]
        batch = _SeenBatch(messages, hashes, seconds.min(), seconds.max())
        earlier = []
        twins = hashes.is_duplicated()
        for seen in self.batches:
            if seen.first_second > batch.last_second or \
                    batch.first_second > seen.last_second:
                continue
            shared = seen.hashes.is_in(hashes.implode())
            if shared.any():
                twins |= hashes.is_in(seen.hashes.filter(shared).implode())
                earlier.append(key_parts(self.inputs(seen.messages.filter(shared))))
        ordinal = pl.repeat(0, len(hashes), dtype=pl.Int64, eager=True)
        if twins.any():
            at = twins.arg_true()
            numbered = pl.concat([*earlier, parts[at]]).select(
                pl.int_range(pl.len(), dtype=pl.Int64).over("_second", "_key_text")
            ).to_series().tail(len(at))
            ordinal = ordinal.scatter(at, numbered)
        self.batches.append(batch)
        return ordinal


@dataclass(frozen=True)
class _SeenBatch:
    messages: pl.DataFrame
    hashes: pl.Series
    first_second: str  # `key_parts`' seconds sort as the times do
    last_second: str


def assign_keys(chat_id: str, inputs: pl.DataFrame) -> pl.Series:
    """message_key of each row from `file_key_inputs`: blake2b in a tight loop.

    The hash state after the chat id is copied for each row (the same digest as
    hashing the whole payload, and a fifth faster than a new hash object each)."""
    payload = pl.concat_str(
        pl.col("_second"), pl.lit(KEY_SEPARATOR), pl.col("_key_text"),
        pl.lit(KEY_SEPARATOR), pl.col("_ordinal").cast(pl.String),
    )
    rests = inputs.select(payload.cast(pl.Binary)).to_series().to_list()
    copy = hashlib.blake2b((chat_id + KEY_SEPARATOR).encode(), digest_size=16).copy
    keys = []
    append = keys.append
    for rest in rests:
        digest = copy()
        digest.update(rest)
        append(digest.hexdigest())
    return pl.Series("message_key", keys, pl.String)
