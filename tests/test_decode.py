"""Decoding the lharries text format and JSON servers, on hostile content."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from ingest.errors import ResponseUnreadable
from ingest.frames import PAGE_SCHEMA
from ingest.sources.decode import (
    Chat,
    decode_chats,
    decode_json_messages,
    decode_text_messages,
    localize,
)

LONDON = ZoneInfo("Europe/London")


def text_rows(texts, chat, tz):  # noqa: ANN001, ANN201
    return decode_text_messages(texts, chat, tz).to_dicts()


def json_rows(texts, structured, chat, tz):  # noqa: ANN001, ANN201
    return decode_json_messages(texts, structured, chat, tz).to_dicts()
CHAT = Chat("447700900001@s.whatsapp.net", "Hiro Smith", False)


def line(stamp: str, sender: str, content: str, chat: str = "Hiro Smith") -> str:
    return f"[{stamp}] Chat: {chat} From: {sender}: {content}\n"


def test_records_split_only_on_headers_of_this_chat():
    pasted = line("2025-06-29 10:00:00", "Ana", "hello", chat="Other Group")
    text = (
        line("2025-06-30 12:56:01", "Hiro Smith", "look:\n" + pasted + "end")
        + line("2025-06-30 12:00:00", "Me", "ok")
    )
    rows = text_rows([text], CHAT, LONDON)
    assert [r["text"] for r in rows] == ["look:\n" + pasted + "end", "ok"]
    assert [r["is_from_me"] for r in rows] == [False, True]


def test_a_pasted_header_of_the_same_chat_that_breaks_the_order_stays_content():
    pasted = "[2025-07-01 09:00:00] Chat: Hiro Smith From: Me: fake"
    text = (
        line("2025-06-30 12:56:01", "Hiro Smith", "said:\n" + pasted)
        + line("2025-06-30 12:00:00", "Hiro Smith", "next")
    )
    rows = text_rows([text], CHAT, LONDON)
    assert [r["text"] for r in rows] == ["said:\n" + pasted, "next"]


def test_an_older_pasted_header_does_not_swallow_the_real_records():
    pasted = "[2025-01-01 00:00:00] Chat: Hiro Smith From: X: old"
    text = (
        line("2025-06-30 12:56:01", "A", "copy:\n" + pasted)
        + line("2025-06-30 12:50:00", "B", "two")
        + line("2025-06-30 12:40:00", "C", "three")
    )
    rows = text_rows([text], CHAT, LONDON)
    assert [r["text"] for r in rows] == ["copy:\n" + pasted, "two", "three"]


def test_media_rows_keep_their_id_and_empty_text():
    media = "[document - Message ID: BAE587961B9EA652 - Chat JID: x@s.whatsapp.net] "
    rows = text_rows([line("2025-06-29 16:35:32", "Hiro Smith", media)],
                                CHAT, LONDON)
    assert rows[0]["media_type"] == "document"
    assert rows[0]["source_message_id"] == "BAE587961B9EA652"
    assert rows[0]["text"] == ""


@pytest.mark.parametrize("content", [
    "emoji 👨‍👩‍👧 and RTL مرحبا and CJK 你好",
    "ends with newline\n",
    "  spaces kept  ",
    "colon: inside: many",
    "<script>alert(1)</script>'; drop table messages; --",
    "\x00\x1b[31m control",
])
def test_content_is_kept_as_written(content):
    rows = text_rows([line("2025-06-30 12:00:00", "Ana", content)], CHAT,
                                LONDON)
    assert rows[0]["text"] == content


GROUP = Chat("120363000000000001@g.us", "Kiln club", True)


def test_group_senders_numbers_and_jids_become_ids():
    text = (line("2025-06-30 12:00:02", "447700900123", "a", chat="Kiln club")
            + line("2025-06-30 12:00:01", "447700900124@s.whatsapp.net", "b",
                   chat="Kiln club")
            + line("2025-06-30 12:00:00", "Ana Lima", "c", chat="Kiln club"))
    rows = text_rows([text], GROUP, LONDON)
    assert [r["sender_id"] for r in rows] == [
        "447700900123", "447700900124@s.whatsapp.net", None]
    assert [r["sender_name"] for r in rows][2] == "Ana Lima"


def test_a_direct_chats_other_sender_is_the_chat_whatever_the_server_names():
    """Upstream can show a legacy group's name (its jid LIKE lookup) for them."""
    text = (line("2025-06-30 12:00:01", "Old school friends", "hi")
            + line("2025-06-30 12:00:00", "Me", "hello"))
    theirs, mine = text_rows([text], CHAT, LONDON)
    assert (theirs["sender_id"], theirs["sender_name"]) == ("447700900001", "Hiro Smith")
    assert (mine["sender_id"], mine["sender_name"], mine["is_from_me"]) == (
        None, None, True)


def test_local_time_becomes_utc_across_dst():
    text = (line("2025-03-30 02:30:00", "A", "after")
            + line("2025-03-30 00:30:00", "A", "before"))
    after, before = text_rows([text], CHAT, LONDON)
    assert after["sent_at"] == datetime(2025, 3, 30, 1, 30, tzinfo=ZoneInfo("UTC"))
    assert after["utc_offset_minutes"] == 60
    assert before["sent_at"] == datetime(2025, 3, 30, 0, 30, tzinfo=ZoneInfo("UTC"))


def test_empty_answers_are_empty():
    assert text_rows(["No messages to display."], CHAT, LONDON) == []
    assert text_rows([""], CHAT, LONDON) == []


def test_no_content_is_upstreams_failed_query_not_an_empty_chat():
    with pytest.raises(ResponseUnreadable, match="database query fails"):
        text_rows([], CHAT, LONDON)


def test_an_answer_cut_inside_a_record_is_unreadable():
    whole = line("2025-06-30 12:56:01", "Ana", "two\nlines") + line(
        "2025-06-30 12:00:00", "Me", "ok")
    assert len(text_rows([whole], CHAT, LONDON)) == 2
    for cut in (len(whole) - 1, len(whole) - 3, whole.index("two") + 2):
        with pytest.raises(ResponseUnreadable, match="cut off"):
            text_rows([whole[:cut]], CHAT, LONDON)


def test_output_that_is_not_the_text_format_says_which_profile_to_try():
    with pytest.raises(ResponseUnreadable, match="try --profile json"):
        text_rows(['[{"id": "x"}]'], CHAT, LONDON)


def test_chats_are_deduplicated_and_groups_known_by_suffix():
    blocks = [
        '{"jid": "1@g.us", "name": "G", "last_message_time": "2025-06-30T12:00:00Z"}',
        '{"jid": "1@g.us", "name": "G", "last_message_time": "2025-06-30T12:00:00Z"}',
        '{"jid": "2@s.whatsapp.net", "name": "D"}',
    ]
    chats = decode_chats(blocks, None)
    assert [(c.chat_id, c.is_group) for c in chats] == [
        ("1@g.us", True), ("2@s.whatsapp.net", False)]


def test_json_messages_keep_ids_and_the_wall_time_they_carry():
    structured = {"result": [{
        "id": "3EB0", "timestamp": "2025-06-30T12:56:01+01:00", "sender_jid": "9@s",
        "sender_name": "Ana", "content": "hi", "is_from_me": 0, "chat_jid": CHAT.chat_id,
        "media_type": "",
    }]}
    (row,) = json_rows([], structured, CHAT, LONDON)
    assert row["source_message_id"] == "3EB0"
    assert row["sent_at_local"] == datetime(2025, 6, 30, 12, 56, 1)
    assert row["utc_offset_minutes"] == 60
    assert row["media_type"] is None and row["is_from_me"] is False


def test_json_garbage_is_unreadable_not_a_crash():
    with pytest.raises(ResponseUnreadable):
        json_rows(["}{ not json"], None, CHAT, LONDON)


def test_pages_are_typed_frames_with_their_local_second():
    text = line("2025-06-30 12:00:01", "Ana", "hi") + line("2025-06-30 12:00:00", "Me", "")
    frame = decode_text_messages([text], CHAT, LONDON)
    assert frame.schema == pl.Schema(PAGE_SCHEMA)
    assert frame["second"].to_list() == ["2025-06-30 12:00:01", "2025-06-30 12:00:00"]
    assert decode_text_messages(["No messages to display."], CHAT, LONDON).schema == \
        pl.Schema(PAGE_SCHEMA)


def test_the_repeated_hour_takes_its_first_offset_and_a_skipped_one_the_earlier():
    """As `localize` does (fold=0), row by row on the days of a switch."""
    text = (line("2025-10-26 01:30:00", "A", "repeated hour")
            + line("2025-03-30 01:30:00", "A", "skipped hour")
            + line("2025-03-29 12:00:00", "A", "steady day"))
    rows = text_rows([text], CHAT, LONDON)
    for row in rows:
        assert (row["sent_at"], row["utc_offset_minutes"]) == localize(
            row["sent_at_local"], LONDON)
    assert [r["utc_offset_minutes"] for r in rows] == [60, 0, 0]


def test_a_header_whose_time_is_not_a_date_is_unreadable():
    with pytest.raises(ResponseUnreadable, match="2025-02-30 12:00:00"):
        text_rows([line("2025-02-30 12:00:00", "Ana", "hi")], CHAT, LONDON)


def test_group_sender_ids_follow_digits_as_python_reads_them():
    text = (line("2025-06-30 12:00:01", "+٤٤٧٧٠٠", "a", chat="Kiln club")
            + line("2025-06-30 12:00:00", "Me", "b", chat="Kiln club"))
    theirs, mine = text_rows([text], GROUP, LONDON)
    assert theirs["sender_id"] == "+٤٤٧٧٠٠" and theirs["sender_name"] == "+٤٤٧٧٠٠"
    assert mine["is_from_me"] and mine["sender_id"] is None
