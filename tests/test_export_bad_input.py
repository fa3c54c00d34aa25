"""Bad input never crashes: a typed error naming the value, and the lake unchanged."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ingest.sources.export import ArchiveLimits, ImportOptions, import_exports
from ingest.sources.export.archive import read_export_file
from ingest.sources.export.errors import (
    ArchiveAmbiguous,
    ArchiveNoChat,
    ArchiveTooLarge,
    ArchiveUnsafe,
    ExportEmpty,
    ExportEncodingInvalid,
    ExportLineTooLong,
    ExportNotRecognised,
)
from ingest.sources.export.parse import parse_export

GOOD = "14/03/2024, 09:15 - Dara Quill: need 40 bags\n"


def snapshot(lake: Path) -> dict[str, bytes]:
    return {str(p.relative_to(lake)): p.read_bytes()
            for p in sorted(lake.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    good = tmp_path / "good.txt"
    good.write_text(GOOD, encoding="utf-8")
    [outcome] = import_exports(lake, [good], ImportOptions(tz="UTC"))
    assert outcome.error is None
    return lake


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def import_bad(lake: Path, path: Path, **limits: int):  # noqa: ANN201
    before = snapshot(lake)
    options = ImportOptions(tz="UTC", limits=ArchiveLimits(**limits))
    [outcome] = import_exports(lake, [path], options)
    assert snapshot(lake) == before
    assert outcome.summary is None
    return outcome.error


def test_not_an_export(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\nmilk\n", encoding="utf-8")
    error = import_bad(lake, path)
    assert isinstance(error, ExportNotRecognised)
    assert "'shopping list'" in str(error) and "Export chat" in str(error)


def test_invalid_utf8(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("14/03/2024, 09:15 - Zoë: hi\n".encode("latin-1"))
    error = import_bad(lake, path)
    assert isinstance(error, ExportEncodingInvalid)
    assert "byte 0xeb on line 1 (offset 22)" in str(error)
    assert "iconv -f WINDOWS-1252 -t UTF-8" in str(error)


def test_empty_file(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert isinstance(import_bad(lake, path), ExportEmpty)


def test_zip_without_chat(lake: Path, tmp_path: Path) -> None:
    path = make_zip(tmp_path / "media.zip", {"IMG-1.jpg": b"x", "VID-2.mp4": b"y"})
    error = import_bad(lake, path)
    assert isinstance(error, ArchiveNoChat)
    assert "IMG-1.jpg" in str(error)


def test_zip_with_two_chats_and_one_chat_name(lake: Path, tmp_path: Path) -> None:
    """Each chat of a zip is imported on its own, so --chat cannot name them all."""
    path = make_zip(tmp_path / "two.zip", {"a/_chat.txt": GOOD, "b/_chat.txt": GOOD})
    before = snapshot(lake)
    [outcome] = import_exports(lake, [path], ImportOptions(chat="x", tz="UTC"))
    assert snapshot(lake) == before
    assert isinstance(outcome.error, ArchiveAmbiguous)
    assert "a/_chat.txt, b/_chat.txt" in str(outcome.error)


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/cron.d/x", "a/../../b.jpg",
                                    "C:\\Windows\\x.txt"])
def test_zip_slip_member(lake: Path, tmp_path: Path, member: str) -> None:
    path = make_zip(tmp_path / "slip.zip", {"_chat.txt": GOOD, member: b"x"})
    error = import_bad(lake, path)
    assert isinstance(error, ArchiveUnsafe)
    assert repr(member) in str(error)


def test_zip_bomb_ratio(lake: Path, tmp_path: Path) -> None:
    bomb = GOOD.encode() + b" " * (4 << 20)
    path = make_zip(tmp_path / "bomb.zip", {"_chat.txt": bomb})
    error = import_bad(lake, path, ratio_floor_bytes=1 << 20, max_ratio=100)
    assert isinstance(error, ArchiveTooLarge)
    assert "times its packed size" in str(error)


def test_zip_bomb_at_default_limits(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("_chat.txt", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(64):
                member.write(chunk)
    assert isinstance(import_bad(lake, path), ArchiveTooLarge)


def test_zip_member_larger_than_cap(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {"_chat.txt": GOOD * 100})
    with pytest.raises(ArchiveTooLarge, match="would expand to"):
        read_export_file(path, ArchiveLimits(max_chat_bytes=1000))


def test_fifty_megabyte_single_line(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "one-line.txt"
    path.write_bytes(b"x" * (50 << 20))
    error = import_bad(lake, path)
    assert isinstance(error, ExportLineTooLong)
    assert "line 1 is 52,428,800 characters" in str(error)


def test_fifty_megabyte_line_inside_an_export(lake: Path, tmp_path: Path) -> None:
    path = tmp_path / "long-body.txt"
    path.write_bytes(GOOD.encode() + b"y" * (50 << 20) + b"\n")
    assert isinstance(import_bad(lake, path), ExportLineTooLong)


def test_utf16_export_is_read() -> None:
    parsed = parse_export("u16.txt", GOOD.encode("utf-16"))
    assert parsed.messages[0].author == "Dara Quill" and parsed.bom


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(GOOD, encoding="utf-8")
    (tmp_path / "in" / "b.txt").write_bytes(b"\xff\xfe\xfa")
    outcomes = import_exports(tmp_path / "lake", [tmp_path / "in"], ImportOptions())
    assert [o.error is None for o in outcomes] == [True, False]


def test_truncated_zip(lake: Path, tmp_path: Path) -> None:
    good = make_zip(tmp_path / "ok.zip", {"_chat.txt": GOOD * 50})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-40])
    error = import_bad(lake, cut)
    # Named as the zip it is, not as a text file that fails to decode
    assert type(error).__name__ == "ArchiveUnreadable", error
    assert "zip" in str(error) and "UTF-8" not in str(error)


def test_zip_in_memory_reader_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.md", "hello")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveNoChat):
        read_export_file(path)
