"""The normalized message row: its columns, types and identity key.

Every source (MCP, the bridge store, exports) produces rows of this shape, and the
identity key is computed here for all of them, so the same message reached through
two sources is the same row in the lake.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

import polars as pl

# Column name -> Polars type of the typed (Parquet) layer, in file order.
MESSAGE_SCHEMA: dict[str, pl.DataType] = {
    "message_key": pl.String(),
    "source": pl.String(),
    "source_message_id": pl.String(),
    "chat_id": pl.String(),
    "chat_name": pl.String(),
    "is_group": pl.Boolean(),
    "sender_id": pl.String(),
    "sender_name": pl.String(),
    "is_from_me": pl.Boolean(),
    "sent_at": pl.Datetime("us", "UTC"),
    "sent_at_local": pl.Datetime("us"),
    "utc_offset_minutes": pl.Int32(),
    "text": pl.String(),
    "media_type": pl.String(),
    "media_filename": pl.String(),
    "media_size": pl.Int64(),
    "is_system": pl.Boolean(),
    "is_deleted": pl.Boolean(),
    "is_edited": pl.Boolean(),
    "batch_id": pl.String(),
    "ingested_at": pl.Datetime("us", "UTC"),
}

# Columns a source fills in; the lake adds message_key, batch_id and ingested_at.
SOURCE_COLUMNS = [c for c in MESSAGE_SCHEMA if c not in ("batch_id", "ingested_at")]
SOURCE_SCHEMA = {name: MESSAGE_SCHEMA[name] for name in SOURCE_COLUMNS}

KEY_SEPARATOR = "\x1f"


# Characters str.strip() removes that are ASCII (it includes the separators \x1c-\x1f)
ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def key_text(text: str | None) -> str:
    """The text as it enters the identity key: NFC, line ends unified, no outer space."""
    if not text:
        return ""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


def key_texts(texts: pl.Series) -> pl.Series:
    """`key_text` of every value, column-wise: ASCII texts without CR only lose their
    outer ASCII space (in Polars); the few others go through `key_text` itself."""
    texts = texts.fill_null("")
    keyed = texts.str.strip_chars(ASCII_SPACE)
    odd = ((texts.str.len_bytes() != texts.str.len_chars())
           | texts.str.contains("\r", literal=True)).arg_true()
    if len(odd):
        exact = [key_text(t) for t in texts.gather(odd).to_list()]
        keyed = keyed.scatter(odd, pl.Series(exact, dtype=pl.String))
    return keyed


def local_second(ts: datetime) -> str:
    """A local wall time truncated to the second, as it enters the identity key."""
    return ts.isoformat(" ", "seconds")


def row_second(row: dict) -> str:
    """The row's local second; sources that read it as text keep it in `_second`."""
    second = row.get("_second")
    if second is None:
        second = row["_second"] = local_second(row["sent_at_local"])
    return second


def message_key(chat_id: str, local_ts: datetime, text: str | None, ordinal: int) -> str:
    """The deterministic identity of one message (32 hex characters)."""
    parts = (chat_id, local_second(local_ts), key_text(text), str(ordinal))
    digest = hashlib.blake2b(KEY_SEPARATOR.join(parts).encode(), digest_size=16)
    return digest.hexdigest()


class OrdinalCounter:
    """Numbers identical (chat, second, text) rows 0, 1, 2 ... in arrival order.

    Identical rows are interchangeable, so any k of n identical rows get the keys of
    ordinals 0..k-1; a later pull that sees all n adds exactly the missing ones.
    One counter must span every page of one pull of one chat, and a pull must not
    see a row twice (sources page by whole seconds to guarantee that).
    """

    def __init__(self) -> None:
        self._seen: Counter[tuple[str, str, str]] = Counter()

    def assign(self, row: dict) -> dict:
        text = key_text(row["text"])
        ident = (row["chat_id"], row_second(row), text)
        ordinal = self._seen[ident]
        self._seen[ident] += 1
        parts = (*ident, str(ordinal))
        digest = hashlib.blake2b(KEY_SEPARATOR.join(parts).encode(), digest_size=16)
        row["message_key"] = digest.hexdigest()
        return row


def with_keys(rows: Iterable[dict]) -> Iterator[dict]:
    """Give every row its message_key, numbering identical rows in order."""
    counter = OrdinalCounter()
    for row in rows:
        yield counter.assign(row)


def empty_message_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=MESSAGE_SCHEMA)
