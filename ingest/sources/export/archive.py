"""Reading export files from disk: .txt, .zip (chat plus media) and folders of them.

Nothing is ever extracted. A zip is refused before any member is read when a member
path would escape its folder (zip-slip) or when its chat members would expand beyond
a sane size or ratio, alone or together (zip bomb); each chat member is then read with
a hard byte cap, since declared sizes can lie.

A WhatsApp zip holds one chat file plus media; a zip made by hand may hold several
exports, and each chat file in it is a chat of its own (issue #5).
"""

from __future__ import annotations

import hashlib
import re
import stat
import threading
import unicodedata
import zipfile
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.sources.export.errors import (
    ArchiveAmbiguous,
    ArchiveDuplicateMember,
    ArchiveNoChat,
    ArchiveTooLarge,
    ArchiveUnreadable,
    ArchiveUnsafe,
    ExportEmpty,
    ExportFolderEmpty,
    ExportPathNotAFile,
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
    container: str
    media_sizes: dict[str, int] = field(default_factory=dict)
    hashing: Future[str] | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        """The bytes' SHA-256 (hex), hashed on a thread while the file is parsed."""
        if self.hashing is None:
            self.hashing = Future()
            self.hashing.set_result(hashlib.sha256(self.data).hexdigest())
        return self.hashing.result()

    @property
    def members(self) -> set[str] | None:
        return set(self.media_sizes) if self.container == "zip" else None


def hash_in_background(data: bytes) -> Future[str]:
    """SHA-256 of `data` on a thread of its own (hashlib lets go of the GIL)."""
    hashed: Future[str] = Future()

    def run() -> None:
        try:
            hashed.set_result(hashlib.sha256(data).hexdigest())
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            hashed.set_exception(exc)

    threading.Thread(target=run, name="walake-sha256", daemon=True).start()
    return hashed


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
    """The export files a PATH argument names: itself, or the .txt/.zip in a folder.

    Refuses, before anything is opened, a PATH that is neither a regular file nor a
    folder (a pipe would block the read), and a folder that holds no export."""
    if not path.is_dir():
        if not path.is_file():
            raise ExportPathNotAFile(str(path), _kind_of(path))
        return [path]
    found = [p for p in sorted(path.rglob("*"))
             if p.is_file() and p.suffix.lower() in (".txt", ".zip")]
    if not found:
        raise ExportFolderEmpty(str(path))
    return found


def _kind_of(path: Path) -> str:
    """What a path that is no regular file is, in words, without opening it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "not readable as a file (a broken link, or gone)"
    kinds = [(stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((word for test, word in kinds if test(mode)), "a special file")


@dataclass(frozen=True)
class ExportSource:
    """One chat file a PATH holds, not read yet: a .txt, or a chat member of a zip.

    `loose_texts` are the zip's other .txt members, taken as attached documents."""

    path: Path
    member: str | None
    chat_name: str
    limits: ArchiveLimits
    media_sizes: dict[str, int] = field(default_factory=dict)
    loose_texts: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if self.member is None:
            return self.path.name
        return f"{self.path.name}/{self.member}"

    def read(self) -> ExportFile:
        """The chat file's bytes; raises a typed error for anything unusable."""
        if self.member is None:
            return _read_text_file(self.path)
        return _read_zip_member(self)


def open_exports(
    path: Path, limits: ArchiveLimits | None = None
) -> list[ExportSource]:
    """The chat files of one export PATH: itself (.txt), or each chat in a zip.

    A zip's safety checks all run here, before any member is read."""
    limits = limits or ArchiveLimits()
    if not zipfile.is_zipfile(path):
        if _looks_like_zip(path):  # cut short or damaged: not a text export
            raise ArchiveUnreadable(path.name, "its end, the zip's directory, is "
                                    "missing or damaged")
        return [ExportSource(path, None, _text_chat_name(path), limits)]
    with _open_zip(path) as archive:
        infos = archive.infolist()
    for info in infos:
        check_member_path(path.name, info.filename)
    check_unique_members(path.name, infos)
    chats = choose_chat_members(path.name, infos)
    check_expansion(path.name, chats, limits)
    chat_names = {c.filename for c in chats}
    loose = tuple(i.filename for i in infos
                  if not i.is_dir() and i.filename.lower().endswith(".txt")
                  and i.filename not in chat_names)
    several = len(chats) > 1
    return [
        ExportSource(path, chat.filename, _member_chat_name(path, chat, several),
                     limits, _zip_media_sizes(infos, chat, chat_names, several),
                     loose)
        for chat in chats
    ]


def _looks_like_zip(path: Path) -> bool:
    """A zip's first bytes (a local file header), or a .zip name."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head == b"PK\x03\x04" or path.suffix.lower() == ".zip"


def read_export_file(path: Path, limits: ArchiveLimits | None = None) -> ExportFile:
    """Read a .txt, or a .zip holding one chat file; raises a typed error otherwise."""
    sources = open_exports(path, limits)
    if len(sources) > 1:
        raise ArchiveAmbiguous(path.name, [s.member or s.name for s in sources])
    return sources[0].read()


def _text_chat_name(path: Path) -> str:
    if path.name == IOS_CHAT_MEMBER:
        return chat_name_from(path.parent.name)
    return chat_name_from(path.name)


def _read_text_file(path: Path) -> ExportFile:
    data = path.read_bytes()
    if not data:
        raise ExportEmpty(path.name)
    return ExportFile(
        name=path.name,
        data=data,
        chat_name=_text_chat_name(path),
        container="file",
        media_sizes=_sibling_sizes(path.parent),
        hashing=hash_in_background(data),
    )


def _sibling_sizes(folder: Path) -> dict[str, int]:
    """Sizes of media files beside a chat .txt (an unzipped export folder)."""
    sizes = {}
    for entry in folder.iterdir():
        if entry.is_file() and entry.suffix.lower() not in (".txt", ".zip"):
            sizes[entry.name] = entry.stat().st_size
    return sizes


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveUnreadable(path.name, str(exc)) from exc


def _read_zip_member(source: ExportSource) -> ExportFile:
    assert source.member is not None
    archive_name = source.path.name
    with _open_zip(source.path) as archive:
        try:
            chat = archive.getinfo(source.member)
        except KeyError as exc:  # the zip was replaced since it was listed
            raise ArchiveUnreadable(archive_name, f"{source.member!r} is gone") \
                from exc
        check_expansion(archive_name, [chat], source.limits)
        data = read_capped(archive_name, archive, chat, source.limits)
    return ExportFile(
        name=source.name,
        data=data,
        chat_name=source.chat_name,
        container="zip",
        media_sizes=source.media_sizes,
        hashing=hash_in_background(data),
    )


def _member_chat_name(archive: Path, chat: zipfile.ZipInfo, several: bool) -> str:
    """A chat file's own name ('WhatsApp Chat with NAME.txt'), whether the zip holds
    one chat or several, so a renamed zip names the chat as the file does; for
    '_chat.txt' (iPhone), its folder's name, else the zip's."""
    member = PurePosixPath(chat.filename)
    if CHAT_FILE_NAME.match(COPY_SUFFIX.sub("", member.stem)):
        return chat_name_from(member.name)
    if not several or (member.name == IOS_CHAT_MEMBER and not member.parent.name):
        return chat_name_from(archive.name)
    if member.name == IOS_CHAT_MEMBER:
        return chat_name_from(member.parent.name)
    return chat_name_from(member.name)


def _zip_media_sizes(
    infos: list[zipfile.ZipInfo],
    chat: zipfile.ZipInfo,
    chat_names: set[str],
    several: bool,
) -> dict[str, int]:
    """Sizes of the media members beside a chat member: every other member when the
    zip holds one chat, those in the chat member's folder when it holds several."""
    folder = PurePosixPath(chat.filename).parent
    return {PurePosixPath(i.filename).name: i.file_size for i in infos
            if not i.is_dir() and i.filename not in chat_names
            and (not several or PurePosixPath(i.filename).parent == folder)}


def check_member_path(archive: str, member: str) -> None:
    """Refuse a member that would land outside the folder it is unzipped into."""
    normal = member.replace("\\", "/")
    parts = PurePosixPath(normal).parts
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal) or ".." in parts:
        raise ArchiveUnsafe(archive, member)


def check_unique_members(archive: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip listing a member name twice: `ZipFile` would silently read only
    the last copy, and which copy is the export cannot be told."""
    counts = Counter(i.filename for i in infos if not i.is_dir())
    twice = next((name for name, count in counts.items() if count > 1), None)
    if twice is not None:
        raise ArchiveDuplicateMember(archive, twice, counts[twice])


def choose_chat_members(
    archive: str, infos: list[zipfile.ZipInfo]
) -> list[zipfile.ZipInfo]:
    """The chat members: each '_chat.txt' and 'WhatsApp Chat ...' .txt, else every .txt.

    Beside named chat files another .txt is an attached document (a media member);
    a zip without a named one (renamed exports zipped by hand) has a chat per .txt.
    """
    texts = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".txt")]
    named = [i for i in texts if PurePosixPath(i.filename).name == IOS_CHAT_MEMBER
             or CHAT_FILE_NAME.match(PurePosixPath(i.filename).stem)]
    chats = named or texts  # names are unique: `check_unique_members`
    if not chats:
        raise ArchiveNoChat(archive, [i.filename for i in infos])
    return chats


def check_expansion(
    archive: str, chats: list[zipfile.ZipInfo], limits: ArchiveLimits
) -> None:
    """Refuse chat members that would expand too far, each alone and all together."""
    for chat in chats:
        _check_size(archive, chat.filename, chat.file_size, chat.compress_size, limits)
    if len(chats) > 1:
        _check_size(archive, [c.filename for c in chats],
                    sum(c.file_size for c in chats),
                    sum(c.compress_size for c in chats), limits)


def _check_size(
    archive: str, member: str | list[str], size: int, packed: int,
    limits: ArchiveLimits,
) -> None:
    if size > limits.max_chat_bytes:
        raise ArchiveTooLarge(archive, member, f"would expand to {size:,} bytes")
    ratio = size / max(packed, 1)
    if size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
        its = "its" if isinstance(member, str) else "their"
        raise ArchiveTooLarge(archive, member,
                              f"would expand {ratio:,.0f} times {its} packed size")


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
