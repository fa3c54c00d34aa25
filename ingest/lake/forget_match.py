"""Who and what `walake forget` removes: read only, settled before anything is written.

A chat by its id, or by a name only one chat has; a sender by a phone number or JID
(both forms the bridge stores), or by a name only one person has. A name several
chats or people share is refused (ForgetAmbiguous). The keys of every matching row
are collected so that every copy of a message (any source, any layer) goes too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import polars as pl

from ingest.errors import IngestError
from ingest.lake.blocklist import USER_PART, id_forms, person_of, user_part
from ingest.lake.manifest import Manifest
from ingest.lake.rewrite import data_layers, files_by_layer

Kind = Literal["chat", "sender"]
SHOWN_MATCHES = 10


class ForgetAmbiguous(IngestError):
    """A name that more than one chat, or more than one person, has."""

    def __init__(self, kind: str, value: str, matches: list[tuple[str, int]]) -> None:
        self.matches = matches
        shown = ", ".join(f"{i} ({_messages(n)})" for i, n in matches[:SHOWN_MATCHES])
        more = len(matches) - SHOWN_MATCHES
        super().__init__(
            f"\"{value}\" matches {len(matches)} {kind}s: {shown}"
            + (f" and {more} more" if more > 0 else "")
            + f". Nothing was changed. Pass the {kind} id instead, e.g. "
            f"walake forget --{kind} {matches[0][0]}"
        )


def _messages(n: int) -> str:
    return f"{n:,} message" + ("" if n == 1 else "s")


def identities(lake: Path, manifest: Manifest, kind: Kind, value: str) -> set[str]:
    """The identifiers to match; ForgetAmbiguous when a name stands for several."""
    if kind == "chat":
        return chat_ids(lake, manifest, value)
    return sender_ids(lake, manifest, value)


def chat_ids(lake: Path, manifest: Manifest, value: str) -> set[str]:
    chats = manifest.data["chats"]
    if value in chats:
        return {value}
    named = sorted(c for c, info in chats.items() if info.get("name") == value)
    if len(named) > 1:
        counts = message_counts(lake, manifest, "chat_id", {c: c for c in named})
        raise ForgetAmbiguous("chat", value, [(c, counts[c]) for c in named])
    return {value, *named}


def sender_ids(lake: Path, manifest: Manifest, value: str) -> set[str]:
    if user_part(value) is not None:
        return id_forms(value)
    named: set[str] = set()
    for frame in narrow(lake, manifest, ["messages"], ["sender_id", "sender_name"]):
        hit = frame.filter(pl.col("sender_name") == value)
        named.update(hit["sender_id"].drop_nulls())
    persons = sorted({person_of(s) for s in named})
    if len(persons) > 1:
        forms = {form: p for p in persons for form in id_forms(p) | {p}}
        counts = message_counts(lake, manifest, "sender_id", forms)
        raise ForgetAmbiguous("sender", value, [(p, counts[p]) for p in persons])
    return {value}.union(*(id_forms(p) for p in persons))


def narrow(
    lake: Path, manifest: Manifest, layers: list[str], columns: list[str]
) -> Iterator[pl.DataFrame]:
    """Each recorded file of `layers`, with just `columns` (null where it lacks one)."""
    for layer in layers:
        for relative in files_by_layer(manifest, layer):
            path = lake / relative
            schema = pl.read_parquet_schema(path)
            frame = pl.read_parquet(path, columns=[c for c in columns if c in schema])
            missing = [c for c in columns if c not in schema]
            yield frame.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)


def message_counts(
    lake: Path, manifest: Manifest, column: str, groups: dict[str, str]
) -> dict[str, int]:
    """Distinct messages per group; `groups` maps values of `column` to their group."""
    keys: dict[str, set[str]] = {g: set() for g in groups.values()}
    wanted = pl.Series(list(groups), dtype=pl.String)
    for frame in narrow(lake, manifest, ["messages"], ["message_key", column]):
        for key, value in frame.filter(pl.col(column).is_in(wanted)).iter_rows():
            keys[groups[value]].add(key)
    return {g: len(k) for g, k in keys.items()}


def forgotten_keys(
    lake: Path, manifest: Manifest, kind: Kind, ids: set[str]
) -> set[str]:
    """The message_keys of the rows forgotten, in any layer: every copy of them goes."""
    keys: set[str] = set()
    columns = ["message_key", "chat_id", "sender_id", "sender_name"]
    for frame in narrow(lake, manifest, data_layers(manifest), columns):
        mask = row_mask(frame, kind, ids)
        if mask is not None:
            keys.update(frame.filter(mask)["message_key"].drop_nulls())
    return keys


SENDER_COLUMNS = ["message_key", "sender_id", "sender_name"]


def _forgotten_row(keys: set[str], ids: set[str]) -> pl.Expr:
    """A row that goes: a copy of a forgotten message, or one of a forgotten id."""
    return (pl.col("message_key").is_in(pl.Series(list(keys), dtype=pl.String))
            .fill_null(False)
            | pl.col("sender_id").is_in(pl.Series(list(ids), dtype=pl.String))
            .fill_null(False))


def names_to_block(
    lake: Path, manifest: Manifest, keys: set[str], ids: set[str]
) -> set[str]:
    """Display names that only the forgotten rows carry.

    MCP rows of a contact hold their name alone (no sender id), so later pulls are
    kept out by it; a name someone else in the lake has is not blocked."""
    gone: set[str] = set()
    kept: set[str] = set()
    hit = _forgotten_row(keys, ids) | pl.col("sender_name").is_in(list(ids))
    for frame in narrow(lake, manifest, data_layers(manifest), SENDER_COLUMNS):
        named = frame.filter(pl.col("sender_name").is_not_null())
        gone.update(named.filter(hit)["sender_name"])
        kept.update(named.filter(~hit)["sender_name"])
    return gone - kept


def named_rows_kept(
    lake: Path, manifest: Manifest, keys: set[str], ids: set[str]
) -> dict[str, int]:
    """Per display name of the forgotten rows, the other rows with that name and no
    sender id (an export's rows carry names only), which a forget by id keeps."""
    names: set[str] = set()
    unnamed: list[pl.DataFrame] = []
    hit = _forgotten_row(keys, ids)
    for frame in narrow(lake, manifest, ["messages"], SENDER_COLUMNS):
        names.update(frame.filter(hit)["sender_name"].drop_nulls())
        unnamed.append(frame.filter(~hit & pl.col("sender_id").is_null())
                       .select("sender_name"))
    if not names or not unnamed:
        return {}
    kept = pl.concat(unnamed).filter(pl.col("sender_name").is_in(sorted(names)))
    return dict(sorted(kept.group_by("sender_name").len().iter_rows()))




def row_mask(frame: pl.DataFrame, kind: Kind, ids: set[str]) -> pl.Series | None:
    wanted = list(ids)
    if kind == "chat":
        if "chat_id" not in frame.columns:
            return None
        return frame["chat_id"].is_in(wanted).fill_null(False)
    columns = [c for c in ("sender_id", "sender_name") if c in frame.columns]
    if not columns:
        return None
    hits = [pl.col(c).is_in(wanted).fill_null(False) for c in columns]
    if "sender_id" in columns:  # any stored form: 447700900045, ...@s.whatsapp.net
        user = pl.col("sender_id").str.extract(USER_PART, 1)
        hits.append(user.is_in(wanted).fill_null(False))
    return frame.select(pl.any_horizontal(hits).alias("hit"))["hit"]
