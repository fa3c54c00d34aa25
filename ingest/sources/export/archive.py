"""Reading export files from disk: .txt, .zip (chat plus media) and folders of them.

Nothing is ever extracted. A zip is refused before any member is read when a member
path would escape its folder (zip-slip) or when the chat member would expand beyond a
sane size or ratio (zip bomb); the chat member is then read with a hard byte cap, since
declared sizes can lie.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.sources.export.errors import (
    ArchiveAmbiguous,
    ArchiveNoChat,
    ArchiveTooLarge,
    ArchiveUnreadable,
    ArchiveUnsafe,
    ExportEmpty,
)

# "WhatsApp Chat with NAME" and its localized forms (B23); spaces may be "_".
CHAT_FILE_NAME = re.compile(
    r"^(?:WhatsApp[ _-]Chat[ _](?:with|mit|met|med|avec|con|com|z|ile)[ _]"
    r"|WhatsApp[ _]Chat[ _]-[ _]"
    r"|Chat[ _]de[ _]WhatsApp[ _](?:con|amb)[ _]"
    r"|Conversa[ _]do[ _]WhatsApp[ _]com[ _]"
    r"|Discussion[ _]WhatsApp[ _]avec[ _]"
    r"|Chat[ _]WhatsApp[ _]con[ _]"
    r"|Czat[ _]WhatsApp[ _]z[ _]"
    r"|WhatsApp[ _]-[ _]Chat[ _]met[ _])(?P<name>.+)$",
    re.IGNORECASE,
)
IOS_CHAT_MEMBER = "_chat.txt"
COPY_SUFFIX = re.compile(r"[ _]\(\d+\)$")


@dataclass(frozen=True)
class ArchiveLimits:
    """How far a zip may expand before it is refused as a bomb."""

    max_chat_bytes: int = 1 << 30
    max_ratio: int = 200
    ratio_floor_bytes: int = 16 << 20


@dataclass
class ExportFile:
    """One chat file's bytes and where they came from."""

    name: str
    data: bytes
    chat_name: str
    sha256: str
    container: str
    media_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def members(self) -> set[str] | None:
        return set(self.media_sizes) if self.container == "zip" else None


def chat_name_from(path_name: str) -> str:
    """The chat's name from a file, zip or folder name (B23), NFC."""
    stem = path_name
    for suffix in (".txt", ".zip"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = COPY_SUFFIX.sub("", stem)
    found = CHAT_FILE_NAME.match(stem)
    if found:
        stem = found.group("name")
        if "_" in stem and " " not in stem:
            stem = stem.replace("_", " ")
    return unicodedata.normalize("NFC", stem.strip())


def find_exports(path: Path) -> list[Path]:
    """The export files a PATH argument names: itself, or the .txt/.zip in a folder."""
    if not path.is_dir():
        return [path]
    found = [p for p in sorted(path.rglob("*"))
             if p.is_file() and p.suffix.lower() in (".txt", ".zip")]
    return found


def read_export_file(path: Path, limits: ArchiveLimits | None = None) -> ExportFile:
    """Read one .txt or .zip export; raises a typed error for anything unusable."""
    if zipfile.is_zipfile(path):
        return read_zip_export(path, limits or ArchiveLimits())
    data = path.read_bytes()
    if not data:
        raise ExportEmpty(path.name)
    if path.name == IOS_CHAT_MEMBER:
        chat_name = chat_name_from(path.parent.name)
    else:
        chat_name = chat_name_from(path.name)
    return ExportFile(
        name=path.name,
        data=data,
        chat_name=chat_name,
        sha256=hashlib.sha256(data).hexdigest(),
        container="file",
        media_sizes=_sibling_sizes(path.parent),
    )


def _sibling_sizes(folder: Path) -> dict[str, int]:
    """Sizes of media files beside a chat .txt (an unzipped export folder)."""
    sizes = {}
    for entry in folder.iterdir():
        if entry.is_file() and entry.suffix.lower() not in (".txt", ".zip"):
            sizes[entry.name] = entry.stat().st_size
    return sizes


def read_zip_export(path: Path, limits: ArchiveLimits) -> ExportFile:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveUnreadable(path.name, str(exc)) from exc
    with archive:
        infos = archive.infolist()
        for info in infos:
            check_member_path(path.name, info.filename)
        chat = choose_chat_member(path.name, infos)
        check_expansion(path.name, chat, limits)
        data = read_capped(path.name, archive, chat, limits)
        sizes = {PurePosixPath(i.filename).name: i.file_size
                 for i in infos if not i.is_dir() and i is not chat}
    return ExportFile(
        name=f"{path.name}/{chat.filename}",
        data=data,
        chat_name=chat_name_from(path.name),
        sha256=hashlib.sha256(data).hexdigest(),
        container="zip",
        media_sizes=sizes,
    )


def check_member_path(archive: str, member: str) -> None:
    """Refuse a member that would land outside the folder it is unzipped into."""
    normal = member.replace("\\", "/")
    parts = PurePosixPath(normal).parts
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal) or ".." in parts:
        raise ArchiveUnsafe(archive, member)


def choose_chat_member(archive: str, infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo:
    """The chat member: '_chat.txt', a 'WhatsApp Chat ...' name, or the only .txt."""
    texts = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".txt")]
    ios = [i for i in texts if PurePosixPath(i.filename).name == IOS_CHAT_MEMBER]
    named = [i for i in texts if CHAT_FILE_NAME.match(PurePosixPath(i.filename).stem)]
    for group in (ios, named, texts):
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            raise ArchiveAmbiguous(archive, [i.filename for i in group])
    raise ArchiveNoChat(archive, [i.filename for i in infos])


def check_expansion(archive: str, chat: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    if chat.file_size > limits.max_chat_bytes:
        raise ArchiveTooLarge(archive, chat.filename,
                              f"would expand to {chat.file_size:,} bytes")
    ratio = chat.file_size / max(chat.compress_size, 1)
    if chat.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
        raise ArchiveTooLarge(archive, chat.filename,
                              f"would expand {ratio:,.0f} times its packed size")


def read_capped(
    archive: str, zipped: zipfile.ZipFile, chat: zipfile.ZipInfo, limits: ArchiveLimits
) -> bytes:
    """Read the chat member, never more than the cap whatever its header declares."""
    cap = min(limits.max_chat_bytes, max(chat.file_size, 0)) + 1
    try:
        with zipped.open(chat) as handle:
            data = handle.read(cap)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveUnreadable(archive, str(exc)) from exc
    if len(data) >= cap:
        raise ArchiveTooLarge(archive, chat.filename,
                              "expands beyond the size its header declares")
    return data
