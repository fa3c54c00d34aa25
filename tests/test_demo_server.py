"""The demo MCP server, started as a real stdio subprocess and read with the mcp 2.3
client: exact rows, upstream SQL semantics, the JSON profile and every fault knob."""

import asyncio
import json
import re
import sqlite3
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from ingest.demo.store import append_messages, generate_store

REPO = Path(__file__).resolve().parents[1]
MEDIA = re.compile(r"^\[(\w+) - Message ID: (\S+) - Chat JID: (\S+)\] ")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("server") / "messages.db"
    generate_store(path, chats=12, messages_per_chat=300)
    return path


@asynccontextmanager
async def serve(store, profile="lharries", faults="", timeout=20):
    env = {"PYTHONPATH": str(REPO), "WALAKE_DEMO_FAULTS": faults}
    args = ["-m", "ingest.demo.server", "--store", str(store), "--profile", profile]
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    async with Client(params, read_timeout_seconds=timeout) as client:
        yield client


def run(coro):
    return asyncio.run(coro)


def q(path, sql, params=()):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def parse_records(text, chat_name):
    """Split lharries text on the name-aware header; return (ts, sender, body)."""
    header = re.compile(
        rf"^\[(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d)\] Chat: {re.escape(chat_name)} From: ",
        re.M,
    )
    starts = list(header.finditer(text))
    records = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        sender, _, body = text[match.end():end].partition(": ")
        assert body.endswith("\n")
        records.append((match.group(1), sender, body[:-1]))
    return records


def expected_body(content, media, msg_id, chat_jid):
    if not media:
        return content
    return f"[{media} - Message ID: {msg_id} - Chat JID: {chat_jid}] "


def chat_rows(store, jid):
    return q(store, "SELECT timestamp, is_from_me, content, media_type, id "
                    "FROM messages WHERE chat_jid = ?", (jid,))


def test_lharries_returns_exactly_the_stores_rows_as_text(store):
    chats = q(store, "SELECT jid, name FROM chats")

    async def pull():
        out = {}
        async with serve(store) as client:
            for jid, _ in chats:
                out[jid] = await client.call_tool("list_messages", {
                    "chat_jid": jid, "limit": -1, "include_context": False})
        return out

    results = run(pull())
    for jid, name in chats:
        result = results[jid]
        assert not result.is_error and result.structured_content is None
        assert len(result.content) == 1
        records = parse_records(result.content[0].text, name)
        rows = chat_rows(store, jid)
        assert sorted((ts, body) for ts, _, body in records) == sorted(
            (ts[:19], expected_body(c, m, i, jid)) for ts, _, c, m, i in rows)
        assert sum(s == "Me" for _, s, _ in records) == sum(r[1] for r in rows)
        walls = [ts for ts, _, _ in records]
        assert walls == sorted(walls, reverse=True)  # newest first


def test_sender_names_follow_the_upstream_lookup(store):
    legacy, name = q(store, "SELECT jid, name FROM chats WHERE jid LIKE '%-%@g.us'")[0]
    creator = legacy.split("-")[0]

    async def pull():
        async with serve(store) as client:
            return await client.call_tool("get_last_interaction", {"jid": creator})

    text = run(pull()).content[0].text
    # the bare number matches the legacy group's JID before the creator's own chat
    assert re.match(rf"^\[[\d :-]+\] Chat: .+ From: {re.escape(name)}: ", text)
    assert text.endswith("\n") and text.count("\n") >= 1


def test_paging_limits_empty_and_bad_dates(store):
    jid = q(store, "SELECT jid FROM chats WHERE jid LIKE '%@lid'")[0][0]
    name = q(store, "SELECT name FROM chats WHERE jid = ?", (jid,))[0][0]
    total = len(chat_rows(store, jid))

    async def pull():
        async with serve(store) as client:
            pages = [await client.call_tool("list_messages", {
                "chat_jid": jid, "limit": 100, "page": p, "include_context": False})
                for p in range(total // 100 + 2)]
            zero = await client.call_tool("list_messages", {"limit": 0})
            bad = await client.call_tool("list_messages", {"after": "yesterday"})
            ctx = await client.call_tool("list_messages", {"chat_jid": jid, "limit": 2})
            return pages, zero, bad, ctx

    pages, zero, bad, ctx = run(pull())
    counts = [len(parse_records(p.content[0].text, name)) for p in pages]
    assert sum(counts) == total and counts[-1] == 0
    assert pages[-1].content[0].text == "No messages to display."
    assert zero.content[0].text == "No messages to display."
    assert bad.is_error
    assert bad.content[0].text == (
        "Error executing tool list_messages: Invalid date format for 'after': "
        "yesterday. Please use ISO-8601 format.")
    # include_context defaults to True: newest match = 1 before + itself (nothing
    # after it), second = before + itself + after, duplicates kept
    records = parse_records(ctx.content[0].text, name)
    assert len(records) == 5
    assert records[0] == records[3] and records[1] == records[4]


def test_after_and_before_compare_as_text(store):
    jid, stamp = q(store, """SELECT chat_jid, timestamp FROM messages
        WHERE timestamp LIKE '%+01:00' GROUP BY chat_jid, timestamp
        HAVING COUNT(*) >= 2 LIMIT 1""")[0]
    wall = stamp[:19].replace(" ", "T")
    same_second = q(store, "SELECT COUNT(*) FROM messages WHERE chat_jid = ? "
                           "AND timestamp = ?", (jid, stamp))[0][0]
    names = dict(q(store, "SELECT jid, name FROM chats"))

    def expected(op, bound):
        sql = f"SELECT COUNT(*) FROM messages WHERE chat_jid = ? AND timestamp {op} ?"
        return q(store, sql, (jid, bound))[0][0]

    async def pull():
        async with serve(store) as client:
            out = {}
            for key, args in {
                "naive": {"after": wall}, "zulu": {"after": wall + "Z"},
                "plus5": {"after": wall + "+05:00"},
                "before": {"before": wall + "+01:00"},
            }.items():
                r = await client.call_tool("list_messages", {
                    "chat_jid": jid, "limit": -1, "include_context": False, **args})
                out[key] = parse_records(r.content[0].text, names[jid])
            return out

    got = run(pull())
    at_wall = [r for r in got["naive"] if r[0] == stamp[:19]]
    assert len(at_wall) == same_second  # the suffix sorts after the bare string
    assert len(got["naive"]) == expected(">", stamp[:19])
    assert len(got["zulu"]) == expected(">", stamp[:19] + "+00:00")
    assert len(got["plus5"]) == expected(">", stamp[:19] + "+05:00")
    assert not [r for r in got["plus5"] if r[0] == stamp[:19]]
    assert len(got["before"]) == expected("<", stamp)


def test_list_chats_duplicates_and_chat_json(store):
    expected = q(store, """SELECT COUNT(*) FROM chats LEFT JOIN messages
                        ON jid = chat_jid AND timestamp = last_message_time""")[0][0]
    media_id = q(store, "SELECT id FROM messages WHERE media_type = 'image' "
                        "AND timestamp LIKE '%+00:00' LIMIT 1")[0][0]

    async def pull():
        async with serve(store) as client:
            chats = await client.call_tool("list_chats", {"limit": -1})
            broken = await client.call_tool(
                "list_chats", {"include_last_message": False})
            ctx = await client.call_tool(
                "get_message_context", {"message_id": media_id})
            missing = await client.call_tool("get_message_context", {"message_id": "X"})
            return chats, broken, ctx, missing

    chats, broken, ctx, missing = run(pull())
    assert chats.structured_content is None
    blocks = [json.loads(b.text) for b in chats.content]
    assert len(blocks) == expected > len({b["jid"] for b in blocks}) == 12
    assert list(blocks[0]) == ["jid", "name", "last_message_time", "last_message",
                               "last_sender", "last_is_from_me"]
    assert all(b.text.isascii() and "\n" not in b.text for b in chats.content)
    assert broken.content == [] and not broken.is_error

    body = json.loads(ctx.content[0].text)
    assert list(body) == ["message", "before", "after"]
    assert body["message"]["id"] == media_id
    assert body["message"]["timestamp"].endswith("Z")
    assert list(body["message"]) == ["timestamp", "sender", "content", "is_from_me",
                                     "chat_jid", "id", "chat_name", "media_type"]
    assert missing.is_error and missing.content[0].text == (
        "Error executing tool get_message_context: Message with ID X not found")


def test_json_profile_returns_structured_dicts(store):
    jid = q(store, "SELECT jid FROM chats WHERE jid LIKE '120363%'")[0][0]
    rows = chat_rows(store, jid)

    async def pull():
        async with serve(store, profile="json") as client:
            chats = await client.call_tool("list_chats", {"limit": 1000})
            msgs = await client.call_tool("list_messages", {
                "chat_jid": jid, "limit": 1000, "include_context": False,
                "sort_by": "oldest"})
            after = await client.call_tool("list_messages", {
                "chat_jid": jid, "after": "2025-03-30T12:00:00+01:00",
                "include_context": False, "limit": 500})
            return chats, msgs, after

    chats, msgs, after = run(pull())
    listed = chats.structured_content["result"]
    assert len(listed) == 12 == len({c["jid"] for c in listed})
    assert {c["is_group"] for c in listed} == {True, False}
    result = msgs.structured_content["result"]
    assert len(result) == min(500, len(rows))
    assert set(result[0]) == {
        "id", "timestamp", "sender_jid", "sender_phone", "sender_name",
        "sender_display", "content", "is_from_me", "chat_jid", "chat_name",
        "media_type", "reaction_to_message_id", "quoted_message_id"}
    assert json.loads(msgs.content[0].text) == result[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d",
                        result[0]["timestamp"])
    # by instant: 12:00+01:00 is 11:00Z
    expected = q(store, "SELECT COUNT(*) FROM messages WHERE chat_jid = ? AND "
                        "julianday(timestamp) > julianday('2025-03-30 11:00:00')",
                 (jid,))[0][0]
    assert len(after.structured_content["result"]) == min(500, expected)


def test_reads_while_the_bridge_appends(store, tmp_path):
    path = tmp_path / "live.db"
    path.write_bytes(store.read_bytes())
    jid, name = q(path, "SELECT jid, name FROM chats LIMIT 1")[0]
    before = len(chat_rows(path, jid))

    async def pull():
        async with serve(path) as client:
            seen = []
            writer = asyncio.create_task(asyncio.to_thread(
                append_messages, path, jid, 40, 5, "Europe/London", 0.01))
            while not writer.done():
                r = await client.call_tool("list_messages", {
                    "chat_jid": jid, "limit": -1, "include_context": False})
                assert not r.is_error
                seen.append(len(parse_records(r.content[0].text, name)))
            await writer
            r = await client.call_tool("list_messages", {
                "chat_jid": jid, "limit": -1, "include_context": False})
            return seen, len(parse_records(r.content[0].text, name))

    seen, final = run(pull())
    assert len(seen) >= 2 and seen == sorted(seen)
    assert before <= seen[0] and seen[-1] <= before + 40 == final


def test_fault_knobs_in_call_order(store):
    knobs = ("error_on_call=1,garbage_on_call=2,truncate_on_call=3,noise_on_call=4,"
             "hang_on_call=5,exit_after_calls=6")
    args = {"limit": 4}

    async def pull():
        async with serve(store, faults=knobs) as client:
            out = [await client.call_tool("list_chats", args) for _ in range(4)]
            with pytest.raises(Exception, match="timed out"):
                await client.call_tool("list_chats", args, read_timeout_seconds=1)
            out.append(await client.call_tool("list_chats", args))
            try:
                await client.call_tool("list_chats", args, read_timeout_seconds=5)
            except Exception as exc:  # the process is gone
                out.append(exc)
            return out

    try:
        out = run(pull())
    except BaseException as exc:  # closing a dead session may raise as a group
        pytest.fail(f"session teardown failed: {exc!r}")
    error, garbage, truncated, noisy, sixth, dead = out
    assert error.is_error and error.content[0].text == (
        "Error executing tool list_chats: injected fault (error_on_call=1)")
    with pytest.raises(ValueError):
        json.loads(garbage.content[0].text)
    assert len(truncated.content) == 2
    with pytest.raises(ValueError):
        json.loads(truncated.content[-1].text)
    assert len(noisy.content) == 4 and not noisy.is_error
    assert len(sixth.content) == 4
    assert isinstance(dead, Exception)


def test_validation_error_and_slow_knobs(store):
    async def pull():
        async with serve(store, faults="validation_error=1,slow_ms=300") as client:
            started = time.perf_counter()
            chats = await client.call_tool("list_chats", {"limit": 3})
            elapsed = time.perf_counter() - started
            empty = await client.call_tool("list_chats", {"query": "no such chat"})
            msgs = await client.call_tool("list_messages", {"limit": 1})
            last = await client.call_tool("get_last_interaction", {
                "jid": "status@broadcast"})
            return chats, elapsed, empty, msgs, last

    chats, elapsed, empty, msgs, last = run(pull())
    assert elapsed >= 0.3
    assert chats.is_error and chats.content[0].text.startswith(
        "Error executing tool list_chats: 3 validation errors for list_chatsOutput\n"
        "result.0\n  Input should be a valid dictionary [type=dict_type, "
        "input_value=Chat(")
    assert not empty.is_error and empty.structured_content == {"result": []}
    assert msgs.is_error and "1 validation error for list_messagesOutput" in (
        msgs.content[0].text)
    assert not last.is_error and last.content[0].text.startswith("[")


def test_bad_fault_spec_and_missing_store_exit_2(store, tmp_path):
    import subprocess
    cmd = [sys.executable, "-m", "ingest.demo.server", "--store"]
    env = {"PYTHONPATH": str(REPO), "WALAKE_DEMO_FAULTS": "explode=1"}
    bad_spec = subprocess.run(cmd + [str(store)], env=env, capture_output=True,
                              text=True, timeout=30)
    assert bad_spec.returncode == 2 and "unknown knob 'explode'" in bad_spec.stderr
    missing = subprocess.run(cmd + [str(tmp_path / "none.db")], capture_output=True,
                             text=True, timeout=30, env={"PYTHONPATH": str(REPO)})
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "none.db").exists()
