"""Every sample export reproduces its .expected.json field by field."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from ingest.sources.export import parse_export

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "cases" / "exports"
OWN = Path(__file__).parent / "data" / "exports"
OPTIONAL = {
    "attributed_to": None, "author_is_unsaved_contact": False, "attachment": None,
    "media_kind": None, "caption": None, "is_location": False,
    "attachment_present": None,
}


def cases(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.expected.json")) if folder.is_dir() else []


def read_case(expected: Path) -> tuple[dict, bytes, set[str] | None]:
    case = json.loads(expected.read_text(encoding="utf-8"))
    stem = expected.name.removesuffix(".expected.json")
    text_file = expected.with_name(stem + ".txt")
    if text_file.exists():
        return case, text_file.read_bytes(), None
    with zipfile.ZipFile(expected.with_name(stem + ".zip")) as archive:
        member = case["file"].get("chat_member", "_chat.txt")
        return case, archive.read(member), set(archive.namelist())


def check_case(expected: Path) -> None:
    case, data, members = read_case(expected)
    parsed = parse_export(expected.name, data, members=members)

    got = parsed.messages
    assert len(got) == len(case["messages"]), [m.text for m in got]
    for index, (message, want) in enumerate(zip(got, case["messages"])):
        for key, value in want.items():
            actual = message.timestamp.isoformat() if key == "timestamp" else getattr(
                message, key)
            assert actual == value, f"message {index} field {key}"
        for key, default in OPTIONAL.items():
            if key not in want:
                assert getattr(message, key) == default, f"message {index} {key}"

    fmt = case["format"]
    assert parsed.dialect.platform == fmt["platform"]
    assert parsed.dialect.clock == fmt["clock"]
    assert parsed.dialect.brackets == fmt["brackets"]
    if fmt["date_order"] == "ambiguous":
        assert not parsed.order.decided
    else:
        assert parsed.order.order == fmt["date_order"]
    assert parsed.bom == case["file"]["bom"]
    assert parsed.crlf == (case["file"]["line_end"] == "CRLF")


@pytest.mark.parametrize("expected", cases(SHARED), ids=lambda p: p.name)
def test_shared_sample_matches_expected(expected: Path) -> None:
    check_case(expected)


def test_shared_samples_present() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared samples not found at {SHARED} (../shared/cases/exports)")
    assert cases(SHARED)


@pytest.mark.parametrize("expected", cases(OWN), ids=lambda p: p.name)
def test_own_sample_matches_expected(expected: Path) -> None:
    check_case(expected)


def test_preamble_line_is_reported_with_its_number() -> None:
    parsed = parse_export("x.txt", (OWN / "49-preamble-and-mdy-chronology.txt")
                          .read_bytes())
    assert [(u.line, u.text) for u in parsed.unplaced] == [
        (1, "exported by a helper tool")]
    assert parsed.order.reason == "dates run forward in this order"


def test_undecidable_order_takes_the_hint() -> None:
    data = (OWN / "44-ambiguous-date-order.txt").read_bytes()
    parsed = parse_export("x.txt", data, date_order="mdy")
    assert parsed.order.order == "mdy" and not parsed.order.decided
    assert parsed.messages[0].timestamp.isoformat() == "2024-03-04T08:00:00"
    assert "applied --date-order" in parsed.order.reason


def test_hint_does_not_override_what_the_file_tells() -> None:
    data = "29/12/2021 16:45 - Vera Kos: hi\n".encode()
    parsed = parse_export("x.txt", data, date_order="mdy")
    assert parsed.order.order == "dmy" and parsed.order.decided
