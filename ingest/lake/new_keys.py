"""Whether a batch about to land holds only message_keys new to the lake.

A batch whose keys are all new is marked `new_keys` in the manifest, and the
`messages` view then looks for copies only of the keys unmarked batches hold
(ingest/views.py `key_check_sql`). The mark must never be wrong; a doubt (a file that
cannot be read, a hash collision) only leaves a batch unmarked.

A key is made from its chat id, so a key can repeat only within one chat. The check
reads, per chat, the 64-bit hashes of the keys the lake holds for it, from the files
of the batches whose record lists that chat (or lists no chats: older records), and
keeps them for the `HELD_CHATS` chats used last. Memory follows the chats in play,
not the size of the lake: a whole pull of a large store holds a few chats at a time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import polars as pl

from ingest.lake.manifest import Manifest

log = logging.getLogger(__name__)
KEY_HASH_SEED = 0  # hashes live in memory only, so they need not be stable
HELD_CHATS = 32


def key_hashes(keys: pl.Series) -> pl.Series:
    """Sorted 64-bit hashes of message_keys."""
    return keys.drop_nulls().hash(seed=KEY_HASH_SEED).sort()


class KeyHashes:
    """The key hashes of the chats a writer lands, read from the lake as needed."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        # chat id -> sorted hash chunks, each at most half the size of the one before
        self.chats: OrderedDict[str, list[pl.Series]] = OrderedDict()
        self._last: tuple[pl.DataFrame, dict[str | None, pl.Series]] | None = None

    def all_new(self, frame: pl.DataFrame, held: int | None = None) -> bool:
        """Whether no key of `frame` (message_key, chat_id) repeats in it or is held
        by the lake for its chat (`held`: its `held_count`, if known already)."""
        keys = frame["message_key"]
        if keys.null_count() or keys.n_unique() < len(keys):
            return False
        return (self.held_count(frame) if held is None else held) == 0

    def held_count(self, frame: pl.DataFrame) -> int | None:
        """How many rows of `frame` have a key the lake holds for their chat (None:
        a file could not be read, so it cannot be told)."""
        total = 0
        for chat_id, hashes in self._hashes(frame).items():
            held = self._held(chat_id)
            if held is None:
                return None
            total += _count_in(hashes, held)
        return total

    def note(self, frame: pl.DataFrame) -> None:
        """Add a landed batch's keys to the chats held in memory (the others read
        them from its file when they are needed next)."""
        for chat_id, hashes in self._hashes(frame).items():
            chunks = self.chats.get(chat_id)
            if chunks is not None:
                _add_chunk(chunks, hashes)

    def _hashes(self, frame: pl.DataFrame) -> dict[str | None, pl.Series]:
        """`key_hashes` of each chat's rows; those of the frame `all_new` checked
        last are kept for its `note`."""
        if self._last is not None and self._last[0] is frame:
            return self._last[1]
        keys = frame.select("chat_id", "message_key")
        if keys["chat_id"].n_unique() == 1:
            chats = {keys["chat_id"][0]: key_hashes(keys["message_key"])}
        else:
            chats = {chat_id: key_hashes(rows["message_key"])
                     for (chat_id,), rows in keys.group_by("chat_id")}
        self._last = (frame, chats)
        return chats

    def _held(self, chat_id: str | None) -> list[pl.Series] | None:
        if chat_id is None:
            return None
        if chat_id in self.chats:
            self.chats.move_to_end(chat_id)
            return self.chats[chat_id]
        files = self._files_of(chat_id)
        try:
            hashes = key_hashes(
                pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
                .filter(pl.col("chat_id") == chat_id)
                .select("message_key")
                .collect()
                .to_series()
            ) if files else pl.Series([], dtype=pl.UInt64)
        except (OSError, pl.exceptions.PolarsError) as exc:
            log.info("batch keys not checked against the lake: %s", exc)
            return None
        self.chats[chat_id] = [hashes]
        while len(self.chats) > HELD_CHATS:
            self.chats.popitem(last=False)
        return self.chats[chat_id]

    def _files_of(self, chat_id: str) -> list[str]:
        """Recorded Parquet files that may hold rows of `chat_id`."""
        files: dict[str, None] = {}  # in batch order, once: a compacted file
        for batch_id in sorted(self.manifest.batches):  # serves many batches
            info = self.manifest.batches[batch_id]
            relative = info.get("files", {}).get("messages")
            chats = info.get("chats")
            if relative and (chats is None or chat_id in chats):
                files[str(Path(self.manifest.lake) / relative)] = None
        return list(files)


def _count_in(hashes: pl.Series, chunks: list[pl.Series]) -> int:
    """How many of `hashes` are in any of the sorted `chunks`."""
    found: pl.Series | None = None
    for chunk in chunks:
        if chunk.is_empty() or hashes.is_empty():
            continue
        at = chunk.search_sorted(hashes, side="left").clip(upper_bound=len(chunk) - 1)
        hit = chunk.gather(at) == hashes
        found = hit if found is None else found | hit
    return 0 if found is None else int(found.sum())


def _add_chunk(chunks: list[pl.Series], hashes: pl.Series) -> None:
    """Merged as in a binary counter, so there are few chunks to search and each
    hash is merged only a few times."""
    chunks.append(hashes)
    while len(chunks) > 1 and 2 * len(chunks[-1]) > len(chunks[-2]):
        last = pl.DataFrame({"h": chunks.pop()})
        chunks[-1] = pl.DataFrame({"h": chunks[-1]}).merge_sorted(last, "h")["h"]
