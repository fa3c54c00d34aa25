"""A zip holding several chat files imports each as its own chat (issue #5).

Real zips written in tmp_path, through the real `walake import` (CliRunner): the
summary names every chat file, nothing is left out silently, and importing the zip
again adds nothing.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from lakecheck import invoke, lake_counts, lake_rows, no_traceback

from ingest.cli import _register
from ingest.sources.export import ArchiveLimits, ImportOptions, import_exports
from ingest.sources.export.errors import ArchiveTooLarge, ArchiveUnsafe

_register()

ANA = "WhatsApp Chat with Ana Lima.txt"
BEN = "WhatsApp Chat with Ben Ode.txt"
ANA_TEXT = ("14/03/2024, 09:15 - Ana Lima: need 40 bags by Friday\n"
            "14/03/2024, 09:17 - Tove Brandt: ok, 40 it is\n")
BEN_TEXT = "15/03/2024, 18:02 - Ben Ode: the kiln is free on Monday\n"
IOS_TEXT = ("[16/03/2024, 10:00:01] Rita Osei: see the photo\r\n"
            "\u200e[16/03/2024, 10:00:09] Rita Osei: \u200e<attached: "
            "00000002-PHOTO-2024-03-16-10-00-09.jpg>\r\n")
PHOTO = "00000002-PHOTO-2024-03-16-10-00-09.jpg"


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def run_import(path: Path, lake: Path, *extra: str) -> object:
    result = invoke("import", str(path), "--lake", str(lake), "--tz", "UTC", *extra)
    no_traceback(result)
    return result


def headlines(output: str) -> list[str]:
    return [line.split(":")[0] for line in output.splitlines()
            if line and not line.startswith(" ")]


def test_each_chat_file_of_a_zip_is_its_own_chat(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "kiln exports.zip", {ANA: ANA_TEXT, BEN: BEN_TEXT})
    lake = tmp_path / "lake"

    first = run_import(path, lake)

    assert first.exit_code == 0, first.output
    assert headlines(first.output) == [f"kiln exports.zip/{ANA}",
                                       f"kiln exports.zip/{BEN}"]
    assert "-> 'Ana Lima' [export:ana lima]" in first.output
    assert "-> 'Ben Ode' [export:ben ode]" in first.output
    assert lake_counts(lake) == {"export:ana lima": 2, "export:ben ode": 1}

    again = run_import(path, lake)

    assert again.exit_code == 0, again.output
    assert again.output.count("already imported, nothing added") == 2
    assert lake_counts(lake) == {"export:ana lima": 2, "export:ben ode": 1}


def test_an_ios_chat_beside_an_android_chat_file_is_not_dropped(tmp_path: Path) -> None:
    """'_chat.txt' used to win silently over a 'WhatsApp Chat with' file."""
    path = make_zip(tmp_path / "WhatsApp Chat - Rita Osei.zip",
                    {"_chat.txt": IOS_TEXT, PHOTO: b"jpeg", BEN: BEN_TEXT})
    lake = tmp_path / "lake"

    result = run_import(path, lake, "--json")

    assert result.exit_code == 0, result.output
    summaries = [json.loads(line) for line in result.output.splitlines()]
    assert [(s["file"], s["chat_name"], s["new"]) for s in summaries] == [
        ("WhatsApp Chat - Rita Osei.zip/_chat.txt", "Rita Osei", 2),
        (f"WhatsApp Chat - Rita Osei.zip/{BEN}", "Ben Ode", 1),
    ]
    media = lake_rows(lake, "chat_id, media_filename, media_size")
    assert ("export:rita osei", PHOTO, 4) in media


def test_folders_of_ios_exports_in_one_zip(tmp_path: Path) -> None:
    """Each '_chat.txt' is named after its folder and sees the media beside it."""
    path = make_zip(tmp_path / "phones.zip", {
        "WhatsApp Chat - Kiln Crew/_chat.txt": IOS_TEXT,
        f"WhatsApp Chat - Kiln Crew/{PHOTO}": b"jpeg",
        "WhatsApp Chat - Oak Street/_chat.txt": IOS_TEXT.replace("Rita", "Mira"),
    })
    lake = tmp_path / "lake"

    result = run_import(path, lake)

    assert result.exit_code == 0, result.output
    assert lake_counts(lake) == {"export:kiln crew": 2, "export:oak street": 2}
    media = set(lake_rows(lake, "chat_id, media_filename, media_size"))
    assert ("export:kiln crew", PHOTO, 4) in media
    assert ("export:oak street", PHOTO, None) in media


@pytest.mark.parametrize("option", ["--chat", "--chat-id"])
def test_one_chat_name_for_several_chats_is_refused(
    tmp_path: Path, option: str
) -> None:
    path = make_zip(tmp_path / "two.zip", {ANA: ANA_TEXT, BEN: BEN_TEXT})
    lake = tmp_path / "lake"

    result = run_import(path, lake, option, "Kiln")

    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"FAILED two.zip: the zip holds 2 chat files of different chats ({ANA}, "
        f"{BEN}), and {option} names one chat, so none was imported. Leave out "
        f"{option} to import each file as its own chat (named from its file name), "
        f"or unzip the zip and import each file with its own {option}."
    )
    assert lake_counts(lake) == {}


def test_one_chat_name_applies_to_two_files_of_that_chat(tmp_path: Path) -> None:
    later = ANA_TEXT + "14/03/2024, 09:20 - Ana Lima: thanks\n"
    path = make_zip(tmp_path / "ana.zip", {
        ANA: ANA_TEXT, "WhatsApp Chat with Ana Lima (1).txt": later})

    result = run_import(path, tmp_path / "lake", "--chat", "Ana L.")

    assert result.exit_code == 0, result.output
    assert result.output.count("-> 'Ana L.' [export:ana l.]") == 2
    assert lake_counts(tmp_path / "lake") == {"export:ana l.": 3}


def test_a_loose_text_file_beside_a_chat_is_named_in_a_warning(tmp_path: Path) -> None:
    """An attached .txt document stays media; one no chat attaches is reported."""
    text = ANA_TEXT + "14/03/2024, 09:18 - Ana Lima: notes.txt (file attached)\n"
    path = make_zip(tmp_path / "ana.zip", {
        ANA: text, "notes.txt": "40 bags, 2 pallets", "family.txt": BEN_TEXT})
    lake = tmp_path / "lake"

    result = run_import(path, lake)

    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "warning:" in line]
    assert warnings == [
        "  warning: 'family.txt' in ana.zip was not imported: it is not named like "
        "a WhatsApp chat file and no chat in the zip attaches it. If it is a chat "
        "export, rename it 'WhatsApp Chat with NAME.txt' in the zip, or unzip the "
        "zip and import it by path."
    ]
    assert ("notes.txt", 18) in lake_rows(lake, "media_filename, media_size")


def test_one_bad_chat_file_of_a_zip_keeps_the_others(tmp_path: Path) -> None:
    """Renamed exports zipped by hand: every .txt is a chat, each on its own."""
    path = make_zip(tmp_path / "mine.zip", {"kiln.txt": ANA_TEXT,
                                            "shopping.txt": "milk\nbread\n"})
    lake = tmp_path / "lake"

    result = run_import(path, lake, "--json")

    assert result.exit_code == 1
    good, bad = (json.loads(line) for line in result.output.splitlines()[:2])
    assert (good["file"], good["chat_name"], good["new"]) == ("mine.zip/kiln.txt",
                                                              "kiln", 2)
    assert (bad["file"], bad["ok"], bad["error_type"]) == (
        "mine.zip/shopping.txt", False, "ExportNotRecognised")
    assert bad["error"].startswith("mine.zip/shopping.txt: no line looks like")
    assert "1 of 2 file(s) could not be imported" in result.output
    assert lake_counts(lake) == {"export:kiln": 2}


def test_chat_members_are_limited_together(tmp_path: Path) -> None:
    """Two chat files each under the cap, over it together: the zip is refused
    before any is read."""
    path = make_zip(tmp_path / "two.zip", {ANA: ANA_TEXT * 10, BEN: BEN_TEXT * 10})
    cap = len(ANA_TEXT) * 10 + 10
    options = ImportOptions(tz="UTC", limits=ArchiveLimits(max_chat_bytes=cap))

    [outcome] = import_exports(tmp_path / "lake", [path], options)

    assert isinstance(outcome.error, ArchiveTooLarge)
    assert str(outcome.error).startswith(
        f"two.zip: the 2 chat members ({ANA!r}, {BEN!r}) together would expand to "
        f"{len(ANA_TEXT) * 10 + len(BEN_TEXT) * 10:,} bytes")
    assert lake_counts(tmp_path / "lake") == {}


def test_an_escaping_member_refuses_every_chat_of_the_zip(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "slip.zip", {ANA: ANA_TEXT, BEN: BEN_TEXT,
                                            "../evil.jpg": b"x"})

    [outcome] = import_exports(tmp_path / "lake", [path], ImportOptions(tz="UTC"))

    assert isinstance(outcome.error, ArchiveUnsafe)
    assert lake_counts(tmp_path / "lake") == {}


@pytest.mark.parametrize("extra", [{}, {"IMG-20240314-WA0001.jpg": b"\xff\xd8"}])
def test_a_renamed_zip_of_one_chat_is_named_as_its_chat_file(
    tmp_path: Path, extra: dict
) -> None:
    """The chat file's name wins over the zip's, as with several chat files, so the
    same chat lands under one id however it was zipped; `_chat.txt` keeps the zip's."""
    lake = tmp_path / "lake"
    alone = make_zip(tmp_path / "foo.zip", {ANA: ANA_TEXT, **extra})
    both = make_zip(tmp_path / "kiln exports.zip", {ANA: ANA_TEXT, BEN: BEN_TEXT})
    ios = make_zip(tmp_path / "WhatsApp Chat - Rita Osei.zip",
                   {"_chat.txt": IOS_TEXT, PHOTO: b"\xff\xd8"})

    for path in (alone, both, ios):
        result = run_import(path, lake)
        assert result.exit_code == 0, result.output

    assert lake_counts(lake) == {"export:ana lima": 2, "export:ben ode": 1,
                                 "export:rita osei": 2}
