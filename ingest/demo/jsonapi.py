"""The JSON shape of the maintained fork verygoodplugins/whatsapp-mcp, over a store.

Results are lists of dicts (the server sends them as `structuredContent
{"result": [...]}` plus one pretty JSON text block per item). Unlike lharries, time
filters and ordering use the instant (`julianday`), a naive `after`/`before` is read
as UTC, list_chats returns one row per chat, and page sizes are capped (200 chats,
500 messages). Fields the bridge schema cannot fill (reactions, quotes, read state)
are null or 0.
"""

from __future__ import annotations

import sqlite3

from ingest.demo.db import SenderNames
from ingest.demo.lharries import parse_bound

CHAT_CAP = 200
MESSAGE_CAP = 500
MESSAGE_SELECT = (
    "SELECT m.id, m.timestamp, m.sender, m.content, m.is_from_me, m.chat_jid, "
    "c.name, m.media_type FROM messages m JOIN chats c ON m.chat_jid = c.jid"
)
LAST_MESSAGE = (
    "SELECT {col} FROM messages m WHERE m.chat_jid = c.jid "
    "ORDER BY julianday(m.timestamp) DESC, m.rowid DESC LIMIT 1"
)


def iso(text: str | None) -> str | None:
    """Stored `YYYY-MM-DD HH:MM:SS+HH:MM` as ISO 8601 with its offset."""
    return text.replace(" ", "T", 1) if text else None


def _capped(limit: int, cap: int) -> int:
    return max(1, min(int(limit), cap))


def sender_fields(sender: str, chat_jid: str, from_me: int, names: SenderNames) -> dict:
    if "@" in sender:
        jid = sender
    else:
        jid = f"{sender}@{'lid' if chat_jid.endswith('@lid') else 's.whatsapp.net'}"
    phone = jid.split("@")[0]
    name = names.chat_name(jid)
    display = "Me" if from_me else (name or phone)
    return {
        "sender_jid": jid, "sender_phone": phone, "sender_name": name,
        "sender_display": display,
    }


def message_dict(row: tuple, names: SenderNames) -> dict:
    msg_id, stamp, sender, content, from_me, chat_jid, chat_name, media = row
    return {
        "id": msg_id, "timestamp": iso(stamp),
        **sender_fields(sender or "", chat_jid, from_me, names),
        "content": content, "is_from_me": bool(from_me), "chat_jid": chat_jid,
        "chat_name": chat_name, "media_type": media or None,
        "reaction_to_message_id": None, "quoted_message_id": None,
    }


def list_chats(conn: sqlite3.Connection, args: dict) -> list[dict]:
    last = args.get("include_last_message", True)
    cols = ", ".join(
        f"({LAST_MESSAGE.format(col=col)})" if last else "NULL"
        for col in ("m.content", "m.sender", "m.is_from_me")
    )
    sql = f"SELECT c.jid, c.name, c.last_message_time, {cols} FROM chats c"
    params: list = []
    if args.get("query"):
        sql += " WHERE (LOWER(c.name) LIKE LOWER(?) OR c.jid LIKE ?)"
        params += [f"%{args['query']}%"] * 2
    if args.get("sort_by", "last_active") == "last_active":
        sql += " ORDER BY julianday(c.last_message_time) DESC, c.jid"
    else:
        sql += " ORDER BY c.name, c.jid"
    limit = _capped(args.get("limit", 50), CHAT_CAP)
    sql += " LIMIT ? OFFSET ?"
    rows = conn.execute(sql, (*params, limit, args.get("page", 0) * limit))
    return [_chat_dict(row) for row in rows.fetchall()]


def _chat_dict(row: tuple) -> dict:
    jid, name, last_time, last_message, last_sender, last_from_me = row
    return {
        "jid": jid, "name": name, "is_group": jid.endswith("@g.us"),
        "last_message_time": iso(last_time), "last_message": last_message,
        "last_sender": last_sender,
        "last_is_from_me": None if last_from_me is None else bool(last_from_me),
        "last_read_time": None, "unread": 0,
    }


def _filters(args: dict) -> tuple[list[str], list]:
    after = parse_bound("after", args.get("after"))
    before = parse_bound("before", args.get("before"))
    clauses, params = [], []
    if after:
        clauses.append("julianday(m.timestamp) > julianday(?)")
        params.append(after.isoformat())
    if before:
        clauses.append("julianday(m.timestamp) < julianday(?)")
        params.append(before.isoformat())
    if args.get("sender_phone_number"):
        number = args["sender_phone_number"]
        clauses.append("(m.sender = ? OR m.sender LIKE ?)")
        params += [number, f"{number}@%"]
    if args.get("chat_jid"):
        clauses.append("m.chat_jid = ?")
        params.append(args["chat_jid"])
    if args.get("query"):
        clauses.append("LOWER(m.content) LIKE LOWER(?)")
        params.append(f"%{args['query']}%")
    return clauses, params


def list_messages(conn: sqlite3.Connection, args: dict) -> list[dict]:
    """Matches in the asked order; with context, each match sits among its
    neighbours (oldest first) and repeats are dropped."""
    clauses, params = _filters(args)
    direction = "ASC" if args.get("sort_by", "newest") == "oldest" else "DESC"
    limit = _capped(args.get("limit", 50), MESSAGE_CAP)
    sql = MESSAGE_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "")
    sql += f" ORDER BY julianday(m.timestamp) {direction}, m.rowid {direction}"
    sql += " LIMIT ? OFFSET ?"
    rows = conn.execute(sql, (*params, limit, args.get("page", 0) * limit)).fetchall()
    if args.get("include_context", True):
        rows = _with_context(
            conn, rows, args.get("context_before", 1), args.get("context_after", 1)
        )
    names = SenderNames(conn)
    return [message_dict(row, names) for row in rows]


def _with_context(conn: sqlite3.Connection, rows: list, before: int, after: int):
    seen, out = set(), []
    near = MESSAGE_SELECT + " WHERE m.chat_jid = ? AND julianday(m.timestamp) "
    for row in rows:
        earlier = conn.execute(
            near + "< julianday(?) ORDER BY julianday(m.timestamp) DESC LIMIT ?",
            (row[5], row[1], before),
        ).fetchall()
        later = conn.execute(
            near + "> julianday(?) ORDER BY julianday(m.timestamp) ASC LIMIT ?",
            (row[5], row[1], after),
        ).fetchall()
        for item in [*reversed(earlier), row, *later]:
            if (item[0], item[5]) not in seen:
                seen.add((item[0], item[5]))
                out.append(item)
    return out
