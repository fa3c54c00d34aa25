"""Rebuild of export batches: the raw lines of each batch back into the same rows.

Real files through the real command line: sample exports (Android and iOS, 12h and
24h, multi-line, system lines, a zip with media, an undecidable date order taken
from --date-order, a UTF-16 file for the reference parser), plus a chat imported
twice (a shorter export, then a longer one) so a batch holds only the new messages:
its keys' ordinals and the parser's author cache come from lines it does not hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lakecheck import lake_rows, walake

from ingest.lake.manifest import Manifest
from ingest.schema import SOURCE_COLUMNS

CASES = Path("/work/shared/cases/exports")
DATA = Path(__file__).parent / "data" / "exports"
FILES = [
    (CASES / "20-ios-crlf-multiline.txt", []),
    (CASES / "21-android-us-12h-ascii.txt", []),
    (CASES / "28-android-with-media.txt", ["--me", "Ana"]),
    (CASES / "30-android-system-lines.txt", []),
    (CASES / "12-unicode-fidelity.txt", []),
    (CASES / "35-bom-crlf.txt", []),
    (CASES / "40-ios-zip-with-media.zip", []),
    (DATA / "44-ambiguous-date-order.txt", ["--date-order", "mdy"]),
    (DATA / "43-author-with-colon.txt", []),
]
ZONE = "Europe/Berlin"
COLUMNS = ", ".join(SOURCE_COLUMNS)
# Twins in one minute, and "image omitted" without its mark: media the first time
# an author writes, text afterwards (the reference parser's author cache)
SHORT = ["05/01/2024, 09:41 - Ken Obi: image omitted",
         "05/01/2024, 09:41 - Ken Obi: ok",
         "05/01/2024, 09:42 - Rosa Pimm: fine"]
LONGER = [*SHORT, "05/01/2024, 09:41 - Ken Obi: ok",
          "06/01/2024, 10:00 - Ken Obi: image omitted",
          "06/01/2024, 10:00 - Rosa Pimm: two",
          "line without a header, part of the message above"]


def import_file(lake: Path, path: Path, *extra: str) -> None:
    walake("import", str(path), "--lake", str(lake), "--tz", ZONE, *extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A lake of every sample file, imported once and kept as the reference."""
    base = tmp_path_factory.mktemp("exports")
    lake = base / "lake"
    for path, extra in FILES:
        import_file(lake, path, *extra)
    utf16 = base / "WhatsApp Chat with Utf Sixteen.txt"
    utf16.write_text((CASES / "21-android-us-12h-ascii.txt").read_text("utf-8"),
                     encoding="utf-16")
    import_file(lake, utf16)
    chat = base / "WhatsApp Chat with Rosa Pimm.txt"
    for version in (SHORT, LONGER):
        chat.write_text("\n".join(version) + "\n", encoding="utf-8")
        import_file(lake, chat)
    return lake


@pytest.fixture()
def lake(built, tmp_path) -> Path:
    copy = tmp_path / "lake"
    copy.mkdir()
    for path in built.rglob("*"):
        target = copy / path.relative_to(built)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return copy


def rows(lake: Path) -> list[tuple]:
    return sorted(lake_rows(lake, COLUMNS), key=lambda r: (r[3], r[0]))


def rebuild(lake: Path, *args: str, check: bool = True) -> dict:
    done = walake("rebuild", "--lake", str(lake), "--json", *args, check=check)
    return json.loads(done.stdout)


def export_batches(lake: Path) -> dict[str, dict]:
    return {b: i for b, i in Manifest.load(lake).batches.items()
            if i.get("source") == "export"}


def test_every_export_batch_rebuilds_to_the_same_rows(lake):
    before = rows(lake)
    batches = export_batches(lake)
    assert len(batches) == len(FILES) + 3

    summary = rebuild(lake)

    assert summary["skipped"] == {}
    assert sorted(summary["rebuilt"]) == sorted(batches)
    assert rows(lake) == before
    assert all(i.get("rebuilt_at") for i in export_batches(lake).values())


def test_a_later_import_batch_keeps_keys_from_lines_it_does_not_hold(lake):
    """The second import of the chat landed only its new messages."""
    chat = "export:rosa pimm"
    later = [b for b, i in export_batches(lake).items() if i["chats"] == [chat]][-1]
    assert export_batches(lake)[later]["rows"] == 3  # ok (a twin), image, two
    before = rows(lake)
    media = [(r[7], r[13]) for r in before if r[3] == chat and r[7] == "Ken Obi"]
    assert ("Ken Obi", "image") in media and ("Ken Obi", None) in media

    rebuild(lake)

    assert rows(lake) == before


def test_a_deleted_parquet_file_comes_back_identical(lake):
    before = rows(lake)
    batch, info = next(iter(export_batches(lake).items()))
    (lake / info["files"]["messages"]).unlink()

    summary = rebuild(lake)

    assert batch in summary["rebuilt"]
    assert summary["skipped"] == {}
    assert rows(lake) == before


def test_an_old_style_import_is_not_rebuildable_and_keeps_its_rows(lake):
    manifest = lake / "manifest.json"
    data = json.loads(manifest.read_text())
    old = next(s for s, r in data["imports"].items() if "28-android" in r["chat_id"])
    del data["imports"][old]["rebuild"]
    for info in data["batches"].values():
        if info.get("import", {}).get("sha256") == old:
            del info["import"]["raw_ordinals"]
    manifest.write_text(json.dumps(data))
    before = rows(lake)

    done = walake("rebuild", "--lake", str(lake), check=False)

    assert done.returncode == 1
    assert "imported before rebuilds of exports were possible" in done.stdout
    assert "fix the decoder" not in done.stdout
    assert rows(lake) == before


def test_another_zone_is_refused_for_exports_and_the_import_zone_works(lake):
    before = rows(lake)

    moved = rebuild(lake, "--timezone", "Asia/Tokyo", check=False)

    assert sorted(moved["skipped"]) == sorted(export_batches(lake))
    assert all("imported in Europe/Berlin" in why for why in moved["skipped"].values())
    assert rows(lake) == before
    same = rebuild(lake, "--timezone", ZONE)
    assert same["skipped"] == {}
    assert rows(lake) == before


@pytest.mark.parametrize("path", [p for p, _ in FILES if p.suffix == ".txt"],
                         ids=lambda p: p.stem)
def test_both_parsers_record_the_same_whole_file_decisions(path):
    """What the import record keeps for a rebuild is the same from either parser."""
    from ingest.sources.export.fast import parse_fast
    from ingest.sources.export.parse import parse_export

    data = path.read_bytes()
    fast = parse_fast(path.name, data)
    reference = parse_export(path.name, data)
    assert fast is not None
    assert fast.first_lines == reference.first_lines
    assert fast.system_lines == reference.system_lines
