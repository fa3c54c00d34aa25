"""Finding the chat file and its name in .txt, .zip and folders."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest.sources.export.archive import chat_name_from, find_exports, read_export_file

LINE = "14/03/2024, 09:16 - Ana Lima: IMG-20240314-WA0002.jpg (file attached)\n"


@pytest.mark.parametrize(("name", "chat"), [
    ("WhatsApp Chat with Ana Lima.txt", "Ana Lima"),
    ("WhatsApp Chat with Ana Lima (1).txt", "Ana Lima"),
    ("WhatsApp Chat - Oak Street Sellers.zip", "Oak Street Sellers"),
    ("WhatsApp_Chat_mit_Jörg_Weiß.txt", "Jörg Weiß"),
    ("Chat de WhatsApp con Marisol Vega.txt", "Marisol Vega"),
    ("Discussion WhatsApp avec Léa.zip", "Léa"),
    ("family.txt", "family"),
])
def test_chat_name_from_file_name(name: str, chat: str) -> None:
    assert chat_name_from(name) == chat


def test_android_zip_with_media(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Ana Lima.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("WhatsApp Chat with Ana Lima.txt", LINE)
        archive.writestr("IMG-20240314-WA0002.jpg", b"0123456789")
    source = read_export_file(path)
    assert source.chat_name == "Ana Lima"
    member = "WhatsApp Chat with Ana Lima.txt"
    assert source.name == f"WhatsApp Chat with Ana Lima.zip/{member}"
    assert source.media_sizes == {"IMG-20240314-WA0002.jpg": 10}
    assert source.members == {"IMG-20240314-WA0002.jpg"}


def test_unzipped_ios_folder(tmp_path: Path) -> None:
    folder = tmp_path / "WhatsApp Chat - Kiln Crew"
    folder.mkdir()
    (folder / "_chat.txt").write_text(LINE, encoding="utf-8")
    (folder / "IMG-20240314-WA0002.jpg").write_bytes(b"123")
    [found] = find_exports(tmp_path)
    source = read_export_file(found)
    assert source.chat_name == "Kiln Crew"
    assert source.media_sizes == {"IMG-20240314-WA0002.jpg": 3}
    assert source.members is None
