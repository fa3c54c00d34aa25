"""A document's title and a media caption reach the lake's text (issue #5).

Android repeats a document's title on the line after 'FILE (file attached)' (B12);
iOS writes 'TITLE • N pages document omitted' (B14) or 'TITLE • N pages
<attached: FILE>'. The parse keeps the placeholder as the message text, the file name
as `attachment` and the title as `title` (not a caption, as 28-android-with-media
says); the lake row's text is the title and the caption, one line each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lakecheck import invoke, lake_rows, no_traceback
from test_export_fast import assert_same

from ingest.cli import _register
from ingest.sources.export.parse import parse_export

_register()

L = "\u200e"
ANDROID = [
    "01/02/2024, 10:05 - Jonas Weir: Quote_v2.pdf (file attached)", "Quote_v2",
    "01/02/2024, 10:06 - Jonas Weir: Price list.pdf (file attached)", "Price list",
    "please sign by Friday",
    "01/02/2024, 10:07 - Rita Osei: IMG-20240201-WA0003.jpg (file attached)",
    "new shelf layout",
    "13/02/2024, 10:08 - Rita Osei: <Media omitted>", "the old shelf",
]
IOS = [
    f"{L}[03/03/2024, 09:02:00] Jonas Weir: Quote_v2 • {L}2 pages "
    f"{L}document omitted",
    f"{L}[03/03/2024, 09:03:00] Jonas Weir: {L}Quote_v3.pdf • {L}3 pages "
    f"{L}<attached: 00000012-Quote_v3.pdf>",
    f"{L}[03/03/2024, 09:04:00] Rita Osei: {L}image omitted", "the new shelf",
    f"[13/03/2024, 09:05:00] Rita Osei: {L}Price list.pdf • {L}<attached: "
    "00000013-Price list.pdf>", "please sign",
]


def export(lines: list[str], end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode()


def fields(data: bytes) -> list[tuple]:
    parsed = parse_export("x.txt", data)
    return [(m.author, m.is_media, m.is_system, m.attachment, m.media_kind, m.title,
             m.caption) for m in parsed.messages]


def test_android_document_titles_and_captions() -> None:
    assert fields(export(ANDROID)) == [
        ("Jonas Weir", True, False, "Quote_v2.pdf", "document", "Quote_v2", None),
        ("Jonas Weir", True, False, "Price list.pdf", "document", "Price list",
         "please sign by Friday"),
        ("Rita Osei", True, False, "IMG-20240201-WA0003.jpg", "photo", None,
         "new shelf layout"),
        ("Rita Osei", True, False, None, None, None, "the old shelf"),
    ]


def test_ios_document_titles_and_captions() -> None:
    """The LRM before an attached document's title made it look like an event."""
    assert fields(export(IOS, "\r\n")) == [
        ("Jonas Weir", True, False, None, "document", "Quote_v2", None),
        ("Jonas Weir", True, False, "00000012-Quote_v3.pdf", "document",
         "Quote_v3.pdf", None),
        ("Rita Osei", True, False, None, "photo", None, "the new shelf"),
        ("Rita Osei", True, False, "00000013-Price list.pdf", "document",
         "Price list.pdf", "please sign"),
    ]


def test_the_placeholder_stays_the_message_text() -> None:
    parsed = parse_export("x.txt", export(IOS))
    assert [m.text for m in parsed.messages] == [
        "Quote_v2 • 2 pages document omitted",
        "Quote_v3.pdf • 3 pages <attached: 00000012-Quote_v3.pdf>",
        "image omitted\nthe new shelf",
        "Price list.pdf • <attached: 00000013-Price list.pdf>\nplease sign",
    ]


@pytest.mark.parametrize("lines", [ANDROID, IOS], ids=["android", "ios"])
@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_fast_path_equals_reference(lines: list[str], end: str) -> None:
    assert_same("x.txt", export(lines, end))
    assert_same("x.txt", export(lines[::-1], end))  # captions under other messages


def test_titles_and_captions_land_and_rebuild_to_the_same_rows(tmp_path: Path) -> None:
    """A caption is the row's text; a title is not (MCP stores "" for every media
    row, so the key stays the one an MCP copy gets) and names the file only when the
    export does not (iOS without media)."""
    lake = tmp_path / "lake"
    for name, lines in (("Kiln", ANDROID), ("Oak Street", IOS)):
        path = tmp_path / f"WhatsApp Chat with {name}.txt"
        path.write_bytes(export(lines))
        result = invoke("import", str(path), "--lake", str(lake), "--tz", "UTC")
        no_traceback(result)
        assert result.exit_code == 0, result.output
    columns = "chat_id, text, media_type, media_filename"

    def rows() -> list[tuple]:
        return sorted(lake_rows(lake, columns + ", message_key"))

    landed = sorted(lake_rows(lake, columns))
    assert landed == sorted([
        ("export:kiln", "", "document", "Quote_v2.pdf"),
        ("export:kiln", "please sign by Friday", "document", "Price list.pdf"),
        ("export:kiln", "new shelf layout", "image", "IMG-20240201-WA0003.jpg"),
        ("export:kiln", "the old shelf", "unknown", None),
        ("export:oak street", "", "document", "Quote_v2"),
        ("export:oak street", "", "document", "00000012-Quote_v3.pdf"),
        ("export:oak street", "the new shelf", "image", None),
        ("export:oak street", "please sign", "document", "00000013-Price list.pdf"),
    ])
    before = rows()

    done = invoke("rebuild", "--lake", str(lake), "--json")

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["skipped"] == {}
    assert rows() == before
