"""Write a deterministic synthetic store with the lharries bridge's exact schema.

`generate_store` builds a fresh `messages.db` look-alike: same tables, same value
encodings (local-time TEXT timestamps with offset, `''` media_type for text, bare or
full-JID senders), rollback journal. Same arguments give the same rows and the same
file bytes; rerunning replaces the file. `append_messages` then writes new messages
into an existing store one by one, the way the live bridge does, so a reader in
another process can pull while it runs.

    python -m ingest.demo.store demo.db --chats 50 --messages-per-chat 2000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.demo import content

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    jid TEXT PRIMARY KEY,
    name TEXT,
    last_message_time TIMESTAMP
);

CREATE TABLE IF NOT EXISTS messages (
    id TEXT,
    chat_jid TEXT,
    sender TEXT,
    content TEXT,
    timestamp TIMESTAMP,
    is_from_me BOOLEAN,
    media_type TEXT,
    filename TEXT,
    url TEXT,
    media_key BLOB,
    file_sha256 BLOB,
    file_enc_sha256 BLOB,
    file_length INTEGER,
    PRIMARY KEY (id, chat_jid),
    FOREIGN KEY (chat_jid) REFERENCES chats(jid)
);
"""
INSERT_MESSAGE = (
    "INSERT OR REPLACE INTO messages (id, chat_jid, sender, content, timestamp, "
    "is_from_me, media_type, filename, url, media_key, file_sha256, "
    "file_enc_sha256, file_length) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_CHAT = (
    "INSERT OR REPLACE INTO chats (jid, name, last_message_time) VALUES (?, ?, ?)"
)
MESSAGE_COLUMNS = (
    "id", "chat_jid", "sender", "content", "timestamp", "is_from_me", "media_type",
    "filename", "url", "media_key", "file_sha256", "file_enc_sha256", "file_length",
)

OWN_NUMBER = "447700900001"  # Ofcom's drama range: never a real subscriber
DEFAULT_START = datetime(2025, 3, 1)  # 60 days from here cross the 30 March change
MEDIA_EXT = {"image": ".jpg", "video": ".mp4", "audio": ".ogg"}
MEDIA_SIZES = {
    "image": (20_000, 400_000), "video": (300_000, 16_000_000),
    "audio": (4_000, 900_000), "document": (10_000, 5_000_000),
}
DOC_NAMES = ["invoice_0425.pdf", "Term Sheet v3.docx", "budget.xlsx", "menu.pdf"]
PREFIX_KINDS = ["direct", "group", "legacy", "lid", "status", "direct"]


@dataclass
class ChatSpec:
    """One chat to generate: its JID, stored name and who writes in it."""

    jid: str
    name: str
    kind: str
    members: list[str] = field(default_factory=list)


class LocalClock:
    """Formats unix seconds as the bridge's `YYYY-MM-DD HH:MM:SS+HH:MM` text."""

    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)
        self._offsets: dict[int, int] = {}

    def offset(self, ts: int) -> int:
        # NOTE: zone changes fall on quarter hours, so 900 s buckets are exact.
        bucket = ts // 900
        if bucket not in self._offsets:
            moment = datetime.fromtimestamp(ts, self.zone)
            self._offsets[bucket] = int(moment.utcoffset().total_seconds())
        return self._offsets[bucket]

    def text(self, ts: int) -> str:
        off = self.offset(ts)
        sign = "+" if off >= 0 else "-"
        hh, mm = divmod(abs(off) // 60, 60)
        wall = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts + off))
        return f"{wall}{sign}{hh:02d}:{mm:02d}"

    def stamp(self, ts: int) -> str:
        """The bridge's receive-clock file name stamp, `20060102_150405`."""
        return time.strftime("%Y%m%d_%H%M%S", time.gmtime(ts + self.offset(ts)))


def _epoch(moment: datetime, zone: ZoneInfo) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp())


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def message_id(rng: random.Random) -> str:
    """An id shaped like the ones WhatsApp clients really produce."""
    style = rng.random()
    if style < 0.4:
        return "3EB0" + format(rng.getrandbits(72), "018X")
    if style < 0.6:
        return "BAE5" + format(rng.getrandbits(48), "012X")
    if style < 0.8:
        return "3A" + format(rng.getrandbits(72), "018X")
    return format(rng.getrandbits(128), "032X")


def has_status_chat(chats: int) -> bool:
    """Whether a generated store of `chats` chats holds the status@broadcast one."""
    return "status" in PREFIX_KINDS[:chats]


def _chat_kinds(rng: random.Random, count: int) -> list[str]:
    kinds = PREFIX_KINDS[:count]
    while len(kinds) < count:
        kinds.append("group" if rng.random() < 0.3 else "direct")
    return kinds


def _contact(rng: random.Random, index: int) -> tuple[str, str]:
    return f"4477009{index + 10:05d}", content.person_name(rng)


def build_chats(rng: random.Random, count: int, t0: int) -> list[ChatSpec]:
    """Chat specs in insertion (rowid) order, covering every JID shape and name rule."""
    kinds = _chat_kinds(rng, count)
    contacts = [_contact(rng, i) for i in range(count + 40)]
    strangers = [f"1555010{i:04d}" for i in range(30)]  # numbers with no chat
    creator = contacts[5][0]  # his direct chat comes after his legacy group
    specs = []
    for i, kind in enumerate(kinds):
        phone, name = contacts[i]
        known = rng.sample(contacts[:count], min(6, count))
        members = [p for p, _ in known] + rng.sample(strangers, 3)
        if kind == "direct":
            if i == 7:
                name = phone  # no contact name: the bridge falls back to the number
            elif i == 9:
                name = OWN_NUMBER  # first seen through our own outgoing message
            specs.append(ChatSpec(f"{phone}@s.whatsapp.net", name, kind, [phone]))
        elif kind == "group":
            user = "120363" + _digits(rng, 12)
            title = f"Group {user}" if i == 10 else rng.choice(content.GROUP_NAMES)
            specs.append(ChatSpec(f"{user}@g.us", title, kind, members))
        elif kind == "legacy":
            user = f"{creator}-{t0 - 86_400 * 400}"
            specs.append(ChatSpec(f"{user}@g.us", "Old school friends", kind, members))
        elif kind == "lid":
            lid = "2" + _digits(rng, 14)
            specs.append(ChatSpec(f"{lid}@lid", name, kind, [lid]))
        else:
            specs.append(ChatSpec("status@broadcast", members[0], kind, members))
    return specs


def _times(rng: random.Random, n: int, t0: int, t1: int, final_burst: int) -> list[int]:
    times = sorted(rng.randrange(t0, t1) for _ in range(n))
    for i in range(1, n):
        if rng.random() < 0.04:
            times[i] = times[i - 1]  # same-second burst
    if final_burst and n >= final_burst:
        times[-final_burst:] = [times[-final_burst]] * final_burst
    return times


def _sender(rng: random.Random, spec: ChatSpec, ts: int, pairing: int) -> tuple:
    """(sender, is_from_me) as the bridge stores them for this chat and moment."""
    if rng.random() < (0.1 if spec.kind == "status" else 0.35):
        return OWN_NUMBER, 1
    phone = rng.choice(spec.members)
    history_group = spec.kind in ("group", "legacy") and ts < pairing
    if history_group and rng.random() < 0.7:
        return f"{phone}@s.whatsapp.net", 0  # history sync keeps Key.Participant
    return phone, 0


def _media_kind(rng: random.Random, spec: ChatSpec) -> str:
    roll = rng.random()
    if spec.kind == "status":
        return "image" if roll < 0.5 else "video" if roll < 0.8 else ""
    if roll < 0.04:
        return "image"
    if roll < 0.055:
        return "video"
    if roll < 0.07:
        return "audio"
    return "document" if roll < 0.08 else ""


def _media_fields(rng: random.Random, kind: str, stamp: str) -> tuple:
    if kind == "document":
        filename = rng.choice(DOC_NAMES)
    else:
        filename = f"{kind}_{stamp}{MEDIA_EXT[kind]}"
    token = format(rng.getrandbits(96), "024x")
    url = (
        f"https://mmg.whatsapp.net/v/t62.7118-24/{_digits(rng, 8)}_{token}_n.enc"
        f"?ccb=11-4&oh=01_{token}&oe={format(rng.getrandbits(32), '08X')}"
        "&_nc_sid=5e03e0&mms3=true"
    )
    low, high = MEDIA_SIZES[kind]
    blobs = (rng.randbytes(32), rng.randbytes(32), rng.randbytes(32))
    return (kind, filename, url, *blobs, rng.randrange(low, high))


TEXT_MEDIA = ("", "", "", None, None, None, 0)


def chat_rows(
    rng: random.Random,
    spec: ChatSpec,
    times: list[int],
    clock: LocalClock,
    pairing: int,
) -> list[tuple]:
    """Message rows for one chat, oldest first, in the bridge's column order."""
    rows: list[tuple] = []
    for ts in times:
        stamp_text = clock.text(ts)
        prev = rows[-1] if rows else None
        if prev and prev[4] == stamp_text and rng.random() < 0.3:
            # an identical repeat: same chat, second, sender and content
            rows.append((message_id(rng), *prev[1:]))
            continue
        sender, from_me = _sender(rng, spec, ts, pairing)
        kind = _media_kind(rng, spec)
        if kind:
            # history media are named by the bridge clock at sync time
            stamp = clock.stamp(ts if ts >= pairing else pairing + len(rows) // 50)
            media, text = _media_fields(rng, kind, stamp), ""
        else:
            media, text = TEXT_MEDIA, content.text_message(rng)
            if rng.random() < 0.01:
                text = rng.choice(content.BURST_REPEATS)
        rows.append(
            (message_id(rng), spec.jid, sender, text, stamp_text, from_me, *media)
        )
    return rows


def _repeat_tail(rng: random.Random, rows: list[tuple], copies: int) -> None:
    """Make the newest second hold identical copies of one short message."""
    last = rows[-1]
    body = rng.choice(content.BURST_REPEATS)
    for i in range(1, copies + 1):
        rows[-i] = (rows[-i][0], last[1], last[2], body, last[4], last[5], *TEXT_MEDIA)


def _album_tail(rng: random.Random, rows: list[tuple]) -> None:
    """Make the newest second hold a three-image album from one sender."""
    last = rows[-1]
    stamp = last[4][:19].replace("-", "").replace(":", "").replace(" ", "_")
    for i in range(1, 4):
        media = _media_fields(rng, "image", stamp)
        rows[-i] = (rows[-i][0], last[1], last[2], "", last[4], last[5], *media)


def _fresh_connection(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


def generate_store(
    path: Path,
    chats: int = 50,
    messages_per_chat: int = 2000,
    seed: int = 7,
    tz: str = "Europe/London",
    start: datetime = DEFAULT_START,
    days: int = 60,
) -> dict:
    """Write a new store at `path` (replacing any file there) and summarise it.

    `start` is local wall time in `tz` when naive. The default span crosses the
    Europe/London spring change, so offsets +00:00 and +01:00 both occur. The first
    direct chat ends on three identical messages in one second and the first group
    on a three-image album, so `list_chats` returns duplicate rows for both.
    """
    rng = random.Random(seed)
    clock = LocalClock(tz)
    t0 = _epoch(start, clock.zone)
    t1 = t0 + days * 86_400
    pairing = t0 + int((t1 - t0) * 0.7)
    specs = build_chats(rng, chats, t0)

    counts, chat_rows_out, all_rows = {}, [], []
    for i, spec in enumerate(specs):
        n = messages_per_chat
        if spec.kind == "status":
            n = max(1, n // 20)  # a status feed is sparse
        times = _times(rng, n, t0, t1, 3 if i in (0, 1) else 0)
        rows = chat_rows(rng, spec, times, clock, pairing)
        if i == 0 and len(rows) >= 3:
            _repeat_tail(rng, rows, 3)
        elif i == 1 and len(rows) >= 3:
            _album_tail(rng, rows)
        counts[spec.jid] = len(rows)
        chat_rows_out.append((spec.jid, spec.name, rows[-1][4] if rows else None))
        all_rows.extend(rows)

    conn = _fresh_connection(Path(path))
    try:
        conn.execute("BEGIN")
        conn.executemany(INSERT_CHAT, chat_rows_out)
        conn.executemany(INSERT_MESSAGE, all_rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {"chats": len(specs), "messages": len(all_rows), "per_chat": counts}


def _newest_instant(conn: sqlite3.Connection, chat_jid: str) -> int:
    found = conn.execute(
        "SELECT MAX(CAST(strftime('%s', timestamp) AS INTEGER)) FROM messages"
    ).fetchone()[0]
    row = conn.execute("SELECT 1 FROM chats WHERE jid = ?", (chat_jid,)).fetchone()
    if row is None:
        raise KeyError(f"chat {chat_jid!r} is not in the store")
    return int(found) if found is not None else int(time.time())


def _live_spec(conn: sqlite3.Connection, chat_jid: str) -> ChatSpec:
    name = conn.execute("SELECT name FROM chats WHERE jid = ?", (chat_jid,)).fetchone()
    senders = conn.execute(
        "SELECT DISTINCT sender FROM messages WHERE chat_jid = ? AND is_from_me = 0 "
        "ORDER BY sender", (chat_jid,),
    ).fetchall()
    members = sorted({s.split("@")[0] for (s,) in senders}) or [chat_jid.split("@")[0]]
    kind = "group" if chat_jid.endswith("@g.us") else "direct"
    return ChatSpec(chat_jid, name[0], kind, members)


def append_messages(
    path: Path,
    chat_jid: str,
    count: int,
    seed: int = 11,
    tz: str = "Europe/London",
    interval_s: float = 0.0,
    same_second: int = 1,
) -> list[dict]:
    """Insert `count` live messages newer than anything stored; return them.

    Each message is its own transaction, chat row first (`INSERT OR REPLACE`, which
    moves the chat to the end of the rowid order, as the bridge does), then the
    message. `same_second` consecutive messages share one second. `interval_s`
    sleeps between messages so a reader can run concurrently. Raises `KeyError`
    for an unknown chat.
    """
    rng = random.Random(seed)
    clock = LocalClock(tz)
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        ts = _newest_instant(conn, chat_jid)
        spec = _live_spec(conn, chat_jid)
        inserted = []
        for i in range(count):
            if i % max(1, same_second) == 0:
                ts += rng.randrange(1, 90)
            row = chat_rows(rng, spec, [ts], clock, pairing=0)[0]
            conn.execute(INSERT_CHAT, (chat_jid, spec.name, row[4]))
            conn.execute(INSERT_MESSAGE, row)
            inserted.append(dict(zip(MESSAGE_COLUMNS, row)))
            if interval_s:
                time.sleep(interval_s)
        return inserted
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic bridge store.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--messages-per-chat", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tz", default="Europe/London")
    args = parser.parse_args(argv)
    summary = generate_store(
        args.path, args.chats, args.messages_per_chat, args.seed, args.tz
    )
    summary.pop("per_chat")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
