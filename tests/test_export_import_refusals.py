"""`walake import` on inputs a tester found: each refused with a clear error, or
reported truthfully, and never a lake changed (or created) by a refusal."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import ingest.cli
from ingest.sources.export import ImportOptions, import_exports
from ingest.sources.export import importer as importer_module
from ingest.sources.export.errors import (
    ArchiveDuplicateMember,
    ExportEncodingInvalid,
    ExportFolderEmpty,
    ExportPathNotAFile,
)

GOOD = "14/03/2024, 09:15 - Dara Quill: need 40 bags\n"
BAD_FIRST = "31/02/2025, 12:00 - Hana: impossible date first"
AFTER = ["14/03/2024, 09:15 - Hana: hi", "15/03/2024, 09:16 - Ori: yo"]


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if "import" not in ingest.cli.cli.commands:
        ingest.cli._register()


def snapshot(lake: Path) -> dict[str, bytes]:
    """The lake's data files (not its lock or the CLI's log)."""
    return {str(p.relative_to(lake)): p.read_bytes()
            for p in sorted(lake.rglob("*")) if p.is_file() and p.name != ".lock"
            and p.relative_to(lake).parts[0] != "logs"}


def walake(*args: str) -> object:
    return CliRunner().invoke(ingest.cli.cli, ["import", *args, "--tz", "UTC"])


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("files", [[], ["IMG-1.jpg", "doc.pdf"]])
def test_folder_without_exports_is_an_error(
    tmp_path: Path, files: list[str], as_json: bool
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(b"x")
    lake = tmp_path / "lake"
    result = walake(str(folder), "--lake", str(lake), *(["--json"] * as_json))
    assert result.exit_code == 1
    assert f"no .txt or .zip chat exports found in {folder}" in result.output
    assert not lake.exists()
    with pytest.raises(ExportFolderEmpty):
        import_exports(lake, [folder], ImportOptions(tz="UTC"))
    assert not lake.exists()


@pytest.mark.parametrize("reference", [False, True])
def test_impossible_first_line_is_reported_as_unplaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: bool
) -> None:
    """Both parsers: no message above line 1, so it is not said to be kept in one;
    its text is in the lake's raw layer."""
    if reference:
        monkeypatch.setattr(importer_module, "start_fast", lambda *a, **k: None)
    path = tmp_path / "WhatsApp Chat with Hana.txt"
    path.write_text("\n".join([BAD_FIRST, *AFTER]) + "\n", encoding="utf-8")
    lake = tmp_path / "lake"
    result = walake(str(path), "--lake", str(lake))
    assert result.exit_code == 0, result.output
    assert "message above" not in result.output
    assert ("line 1: header with an impossible date or time before the first "
            "message; not imported as a message (kept in the raw layer only)"
            in result.output)

    data = json.loads(walake(str(path), "--lake", str(lake), "--json").output)
    [unplaced] = data["unplaced"]
    assert unplaced["line"] == 1 and unplaced["text"] == BAD_FIRST
    assert "message above" not in unplaced["reason"]
    raw = pl.read_ndjson(str(lake / "raw" / "**" / "*.jsonl.zst")).to_dicts()
    kept = {r["line"]: r["lines"] for r in raw}
    assert kept == {1: [BAD_FIRST], 2: [AFTER[0]], 3: [AFTER[1]]}


def test_impossible_header_later_is_still_kept_in_the_message_above(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("\n".join([AFTER[0], BAD_FIRST, AFTER[1]]) + "\n",
                    encoding="utf-8")
    [outcome] = import_exports(tmp_path / "lake", [path], ImportOptions(tz="UTC"))
    [unplaced] = outcome.parsed.unplaced
    assert unplaced.line == 2
    assert unplaced.reason.endswith("kept as text of the message above")


def test_zip_with_a_member_name_twice_is_refused(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    good = tmp_path / "good.txt"
    good.write_text(GOOD, encoding="utf-8")
    import_exports(lake, [good], ImportOptions(tz="UTC"))
    before = snapshot(lake)
    path = tmp_path / "dup.zip"
    member = "WhatsApp Chat with Dup.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(member, "14/03/2024, 09:15 - Ana: first copy\n")
            archive.writestr(member, "14/03/2024, 09:15 - Ana: second copy\n")
    result = walake(str(path), "--lake", str(lake))
    assert result.exit_code == 1
    assert f"the zip lists member {member!r} 2 times" in result.output
    assert snapshot(lake) == before
    [outcome] = import_exports(lake, [path], ImportOptions(tz="UTC"))
    assert isinstance(outcome.error, ArchiveDuplicateMember)
    assert snapshot(lake) == before


@pytest.mark.parametrize("option", ["--chat", "--chat-id"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_chat_options_are_usage_errors(
    tmp_path: Path, option: str, value: str
) -> None:
    path = tmp_path / "a.txt"
    path.write_text(GOOD, encoding="utf-8")
    lake = tmp_path / "lake"
    result = walake(str(path), "--lake", str(lake), option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': needs a non-empty value" in result.output
    assert not lake.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "chat.fifo"
    os.mkfifo(fifo)  # opening it for reading would block: no writer ever comes
    lake = tmp_path / "lake"
    result = walake(str(fifo), "--lake", str(lake))
    assert result.exit_code == 1
    assert "this is a named pipe (FIFO), not a regular file or a folder" \
        in result.output
    assert not lake.exists()
    with pytest.raises(ExportPathNotAFile):
        import_exports(lake, [fifo], ImportOptions(tz="UTC"))


def test_bad_byte_in_a_utf8_file_gets_its_line_and_repair_advice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.txt"
    text = "14/03/2024, 09:15 - Zoë: café\n14/03/2024, 09:16 - Zoë: bad X here\n"
    path.write_bytes(text.encode().replace(b"X", b"\xf0"))
    [outcome] = import_exports(tmp_path / "lake", [path], ImportOptions(tz="UTC"))
    assert isinstance(outcome.error, ExportEncodingInvalid)
    message = str(outcome.error)
    assert "byte 0xf0 on line 2 (offset 62) is not valid UTF-8" in message
    assert "iconv -f UTF-8 -t UTF-8 -c" in message
    assert "WINDOWS-1252" not in message


def test_legacy_encoded_file_gets_conversion_advice(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_bytes("14/03/2024, 09:15 - Ana: hi\n14/03/2024, 09:16 - Zoë: hé\n"
                     .encode("cp1252"))
    result = walake(str(path), "--lake", str(tmp_path / "lake"))
    assert result.exit_code == 1
    assert "byte 0xeb on line 2 (offset 50) is not valid UTF-8" in result.output
    assert "iconv -f WINDOWS-1252 -t UTF-8" in result.output
