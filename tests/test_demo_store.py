"""The demo store generator: determinism, the bridge's schema and its value shapes."""

import hashlib
import re
import sqlite3
import time

import pytest

from ingest.demo.store import OWN_NUMBER, append_messages, generate_store

BRIDGE_COLUMNS = {
    "chats": [
        ("jid", "TEXT", 1), ("name", "TEXT", 0), ("last_message_time", "TIMESTAMP", 0),
    ],
    "messages": [
        ("id", "TEXT", 1), ("chat_jid", "TEXT", 2), ("sender", "TEXT", 0),
        ("content", "TEXT", 0), ("timestamp", "TIMESTAMP", 0),
        ("is_from_me", "BOOLEAN", 0), ("media_type", "TEXT", 0),
        ("filename", "TEXT", 0), ("url", "TEXT", 0), ("media_key", "BLOB", 0),
        ("file_sha256", "BLOB", 0), ("file_enc_sha256", "BLOB", 0),
        ("file_length", "INTEGER", 0),
    ],
}
TS_TEXT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d$")
KEYWORDS = [
    "urgent", "asap", "looking for", "recommend", "investment", "funding",
    "startup", "hire", "buy", "sell", "deal", "introduce", "partner", "meeting",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "messages.db"
    summary = generate_store(path, chats=20, messages_per_chat=400)
    return path, summary


def q(path, sql, params=()):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_same_arguments_give_identical_files_and_rows(tmp_path, store):
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    generate_store(a, chats=20, messages_per_chat=400)
    generate_store(b, chats=20, messages_per_chat=400)
    generate_store(c, chats=20, messages_per_chat=400, seed=8)

    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]
    every_row = "SELECT * FROM messages ORDER BY rowid"
    assert q(a, every_row) == q(store[0], every_row)


def test_summary_counts_match_rows(store):
    path, summary = store
    per_chat = dict(q(path, "SELECT chat_jid, COUNT(*) FROM messages GROUP BY 1"))
    assert per_chat == summary["per_chat"]
    assert summary["messages"] == sum(per_chat.values())
    assert summary["chats"] == 20 == q(path, "SELECT COUNT(*) FROM chats")[0][0]


def test_schema_is_the_bridges(store):
    path = store[0]
    for table, expected in BRIDGE_COLUMNS.items():
        info = q(path, f"PRAGMA table_info({table})")
        assert [(row[1], row[2], row[5]) for row in info] == expected
    indexes = q(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert sorted(indexes) == [("sqlite_autoindex_chats_1",),
                               ("sqlite_autoindex_messages_1",)]
    fks = q(path, "PRAGMA foreign_key_list(messages)")
    assert [(fk[2], fk[3], fk[4]) for fk in fks] == [("chats", "chat_jid", "jid")]
    assert q(path, "PRAGMA journal_mode") == [("delete",)]


def test_timestamps_are_local_text_across_the_dst_change(store):
    path = store[0]
    stamps = [s for (s,) in q(path, "SELECT timestamp FROM messages")]
    assert all(TS_TEXT.match(s) for s in stamps)
    assert {s[-6:] for s in stamps} == {"+00:00", "+01:00"}
    assert q(path, "SELECT typeof(timestamp) FROM messages GROUP BY 1") == [("text",)]


def test_last_message_time_is_the_newest_instant_per_chat(store):
    rows = q(store[0], """
        SELECT c.jid, c.last_message_time,
               (SELECT m.timestamp FROM messages m WHERE m.chat_jid = c.jid
                ORDER BY julianday(m.timestamp) DESC LIMIT 1)
        FROM chats c""")
    assert all(last == newest for _, last, newest in rows)


def test_identical_bursts_and_list_chats_duplicates_exist(store):
    path = store[0]
    identical = q(path, """SELECT chat_jid, timestamp, content, COUNT(*) FROM messages
                         GROUP BY 1, 2, 3, sender HAVING COUNT(*) >= 3""")
    assert identical
    joined = q(path, """SELECT COUNT(*) FROM chats LEFT JOIN messages
                      ON jid = chat_jid AND timestamp = last_message_time""")[0][0]
    assert joined >= 20 + 4  # first direct chat and first group end on 3 in a second


def test_media_and_text_rows_are_encoded_like_the_bridge(store):
    path = store[0]
    kinds = dict(q(path, "SELECT media_type, COUNT(*) FROM messages GROUP BY 1"))
    assert set(kinds) == {"", "image", "video", "audio", "document"}
    bad_media = q(path, """SELECT COUNT(*) FROM messages WHERE media_type != ''
        AND (content != '' OR filename = '' OR url NOT LIKE 'https://mmg.%'
             OR file_length <= 0 OR length(media_key) != 32)""")
    assert bad_media == [(0,)]
    bad_text = q(path, """SELECT COUNT(*) FROM messages WHERE media_type = ''
        AND (filename != '' OR media_key IS NOT NULL OR file_length != 0)""")
    assert bad_text == [(0,)]
    assert q(path, "SELECT COUNT(*) FROM messages WHERE media_type IS NULL") == [(0,)]


def test_every_jid_shape_and_sender_form_occurs(store):
    path = store[0]
    jids = [j for (j,) in q(path, "SELECT jid FROM chats")]
    assert any(re.fullmatch(r"\d+@s\.whatsapp\.net", j) for j in jids)
    assert any(re.fullmatch(r"120363\d+@g\.us", j) for j in jids)
    assert any(re.fullmatch(r"\d+-\d{10}@g\.us", j) for j in jids)
    assert any(j.endswith("@lid") for j in jids)
    assert "status@broadcast" in jids

    group_senders = [s for (s,) in q(path, """SELECT DISTINCT sender FROM messages
                     WHERE chat_jid LIKE '%@g.us' AND is_from_me = 0""")]
    assert any("@" in s for s in group_senders)
    assert any("@" not in s for s in group_senders)
    own = q(path, "SELECT DISTINCT sender FROM messages WHERE is_from_me = 1")
    assert own == [(OWN_NUMBER,)]


def test_content_has_traps_unicode_and_business_keywords(store):
    texts = [c for (c,) in q(store[0], "SELECT content FROM messages")]
    assert any("\n" in t for t in texts)
    assert any(re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Chat: ", t, re.M)
               for t in texts)
    assert any(re.search(r"^\[\d\d/\d\d/\d{4}, ", t, re.M) for t in texts)
    joined = "".join(texts)
    for char in ("\u200d", "ש", "م", "会", "é", "😂"):
        assert char in joined
    hits = sum(any(k in t.lower() for k in KEYWORDS) for t in texts)
    assert 0.05 <= hits / len(texts) <= 0.10


def test_append_messages_adds_newer_rows_like_the_live_bridge(tmp_path):
    path = tmp_path / "live.db"
    generate_store(path, chats=6, messages_per_chat=50)
    jid = q(path, "SELECT jid FROM chats WHERE jid LIKE '120363%'")[0][0]
    newest = q(path, "SELECT MAX(julianday(timestamp)) FROM messages")[0][0]

    added = append_messages(path, jid, 5, seed=3, same_second=2)

    assert len(added) == 5
    assert all(row["chat_jid"] == jid for row in added)
    assert all("@" not in row["sender"] for row in added)  # live senders are bare
    assert added[0]["timestamp"] == added[1]["timestamp"]
    stored = q(path, "SELECT id, julianday(timestamp) FROM messages "
                     "WHERE julianday(timestamp) > ?", (newest,))
    assert sorted(i for i, _ in stored) == sorted(row["id"] for row in added)
    last = q(path, "SELECT last_message_time FROM chats WHERE jid = ?", (jid,))
    assert last == [(added[-1]["timestamp"],)]
    with pytest.raises(KeyError):
        append_messages(path, "nobody@s.whatsapp.net", 1)


def test_fifty_by_two_thousand_is_fast(tmp_path):
    started = time.perf_counter()
    summary = generate_store(tmp_path / "big.db")
    assert summary["messages"] >= 49 * 2000
    assert time.perf_counter() - started < 10
