"""The forget blocklist: ids of people and chats forgotten on request, as hashes.

`walake forget` adds to it; every later batch passes through `without_blocked` (in
LakeWriter.commit) and sources that build raw records from whole files call
`unblocked_rows` first. Only a hash of each identifier is kept, in every form one
person's id is stored in (bare number, JID), so the lake no longer names them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
import polars as pl

from ingest.lake.manifest import Manifest

ID_DOMAINS = ("s.whatsapp.net", "lid")  # a person's JIDs; the bridge also stores bare


def hashed(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).hexdigest()


# Sender ids: a phone number, or a JID of it


USER_PART = r"^\+?(\d+)(?::\d+)?(?:@(?:s\.whatsapp\.net|lid))?$"


def user_part(sender: str) -> str | None:
    """The bare user part of a phone number or person JID (`+447700900045`,
    `447700900045@s.whatsapp.net`, `...:3@lid`), or None when `sender` is neither."""
    found = re.match(USER_PART, sender.strip())
    return found.group(1) if found else None


def id_forms(sender: str) -> set[str]:
    """Every form the sources store one person's id in: bare and as a JID."""
    user = user_part(sender)
    if user is None:
        return {sender}
    domain = sender.strip().partition("@")[2]
    domains = [domain] if domain else list(ID_DOMAINS)
    return {sender, user, *(f"{user}@{d}" for d in domains)}


def person_of(sender_id: str) -> str:
    return user_part(sender_id) or sender_id


# Keeping them out of later pulls and imports (called by LakeWriter.commit)


def without_blocked(manifest: Manifest, batch: Any) -> Any:
    """The batch minus rows, raw records, cursors and chats of blocked ids."""
    blocked = manifest.data.get("blocklist") or {}
    chats, senders = blocked.get("chats") or {}, blocked.get("senders") or {}
    if not chats and not senders:
        return batch

    def row_blocked(row: dict) -> bool:
        return (hashed(row.get("chat_id") or "") in chats
                or _sender_blocked(row.get("sender_id"), senders)
                or hashed(row.get("sender_name") or "") in senders)

    batch.rows = [r for r in batch.rows if not row_blocked(r)]
    batch.frames = [_frame_without(f, chats, senders) for f in batch.frames]
    batch.raw = [r for r in (_raw_without(rec, chats, senders) for rec in batch.raw)
                 if r is not None]
    batch.moves = [m for m in batch.moves if hashed(m.chat_id) not in chats]
    batch.chats = {c: v for c, v in batch.chats.items() if hashed(c) not in chats}
    return batch


def _frame_without(frame: pl.DataFrame, chats: dict, senders: dict) -> pl.DataFrame:
    if frame.is_empty():
        return frame
    return frame.filter(_not_blocked(frame, chats, senders))


def unblocked_rows(manifest: Manifest, frame: pl.DataFrame) -> pl.Series | None:
    """Per row of `frame`, False where its chat or sender was forgotten; None when the
    lake has forgotten nothing. Lets a source drop those rows before it builds their
    raw records, which (as file lines) cannot be judged afterwards."""
    blocked = manifest.data.get("blocklist") or {}
    chats, senders = blocked.get("chats") or {}, blocked.get("senders") or {}
    if not chats and not senders:
        return None
    return frame.select(_not_blocked(frame, chats, senders)).to_series()


def _not_blocked(frame: pl.DataFrame, chats: dict, senders: dict) -> pl.Expr:
    def hit(column: str, listed: dict) -> pl.Expr:
        return pl.col(column).fill_null("").map_elements(
            lambda v: hashed(v) in listed, return_dtype=pl.Boolean
        )

    sender = pl.col("sender_id").fill_null("").map_elements(
        lambda v: _sender_blocked(v, senders), return_dtype=pl.Boolean
    )
    return ~(hit("chat_id", chats) | sender | hit("sender_name", senders))


def _sender_blocked(sender_id: str | None, senders: dict) -> bool:
    """Whether a sender id is blocked, in whichever form it was stored or given:
    forgetting `447700900045` keeps out `447700900045@s.whatsapp.net` and back."""
    if not sender_id or not senders:
        return False
    return hashed(sender_id) in senders or hashed(person_of(sender_id)) in senders


def _raw_without(record: Any, chats: dict, senders: dict) -> Any:
    """The record, or None when it belongs to a blocked chat or holds a blocked sender.

    Bridge records are JSON lines of store rows; MCP records carry `chat_id` and are
    decoded to find their senders.
    """
    if isinstance(record, bytes):
        kept = []
        for line in record.splitlines():
            row = msgspec.json.decode(line) if line.strip() else {}
            if (hashed(row.get("chat_jid") or "") in chats
                    or _sender_blocked(row.get("sender"), senders)):
                continue
            kept.append(line)
        return b"\n".join(kept) + b"\n" if kept else None
    if not isinstance(record, dict):
        return record
    if hashed(record.get("chat_id") or "") in chats:
        return None
    if senders and isinstance(record.get("rows"), list):  # a bridge page (monitor)
        rows = [msgspec.json.decode(r) for r in record["rows"] if r]
        if any(_sender_blocked(r.get("sender"), senders) for r in rows):
            return None
    if senders and "texts" in record:
        from zoneinfo import ZoneInfo

        from ingest.lake.rebuild import RebuildContext, _mcp_rows

        rows, _, _ = _mcp_rows(record, RebuildContext(ZoneInfo("UTC"), {}))
        if any(_sender_blocked(r.get("sender_id"), senders)
               or hashed(r.get("sender_name") or "") in senders for r in rows):
            return None
    # Export records (lines of the file) never reach here with a forgotten sender:
    # the importer drops those messages before it builds their records.
    return record
