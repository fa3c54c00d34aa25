"""Typed errors of the export importer; each names the value at fault and the fix."""

from __future__ import annotations

from ingest.errors import IngestError


class ExportError(IngestError):
    """A file that cannot be imported as a WhatsApp chat export."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


class ExportEmpty(ExportError):
    def __init__(self, name: str) -> None:
        super().__init__(
            name,
            "the file is empty. Export the chat again from WhatsApp "
            "(chat menu > More > Export chat) and import the new file.",
        )


class ExportEncodingInvalid(ExportError):
    """A byte that is not UTF-8; the advice depends on whether the rest is."""

    def __init__(
        self, name: str, offset: int, byte: int, line: int, utf8_elsewhere: bool
    ) -> None:
        self.offset = offset
        self.line = line
        where = f"byte 0x{byte:02x} on line {line} (offset {offset})"
        if utf8_elsewhere:  # a UTF-8 file with a few damaged bytes
            advice = (
                "The rest of the file reads as UTF-8, so only these bytes are "
                "damaged: repair that line, or drop the bad bytes (for example: "
                "iconv -f UTF-8 -t UTF-8 -c in.txt > out.txt), or export the chat "
                "again."
            )
        else:  # no UTF-8 text at all: most likely re-saved in a legacy encoding
            advice = (
                "No part of the file reads as UTF-8 text beyond plain ASCII, so an "
                "editor probably re-saved it in another encoding: convert it back "
                "(for example, from Windows-1252: iconv -f WINDOWS-1252 -t UTF-8 "
                "in.txt > out.txt), or export the chat again."
            )
        super().__init__(
            name,
            f"{where} is not valid UTF-8, and WhatsApp writes exports as UTF-8. "
            + advice,
        )


class ExportNotRecognised(ExportError):
    def __init__(self, name: str, sample: str) -> None:
        self.sample = sample
        super().__init__(
            name,
            f"no line looks like a WhatsApp message header (first line: "
            f"{sample[:60]!r}). Pass the .txt or .zip made by 'Export chat'; if it "
            "is one, add a short anonymised sample to tests/data/exports/ and open "
            "an issue.",
        )


class ExportLineTooLong(ExportError):
    def __init__(self, name: str, line: int, length: int, limit: int) -> None:
        self.line = line
        self.length = length
        super().__init__(
            name,
            f"line {line} is {length:,} characters long, more than the {limit:,} "
            "a WhatsApp export line can hold, so this is not an export (or it is "
            "damaged). Export the chat again, or split out the offending line.",
        )


class ExportPathNotAFile(ExportError):
    def __init__(self, name: str, kind: str) -> None:
        self.kind = kind
        super().__init__(
            name,
            f"this is {kind}, not a regular file or a folder, so it was not "
            "opened. Pass the .txt or .zip that 'Export chat' made, or a folder "
            "holding them.",
        )


class ExportFolderEmpty(ExportError):
    """A folder argument that holds no export at all (the message leads with it)."""

    def __init__(self, folder: str) -> None:
        self.name = folder
        IngestError.__init__(
            self,
            f"no .txt or .zip chat exports found in {folder} (nor in its "
            "subfolders), so nothing was imported. Pass the folder that holds the "
            "files 'Export chat' made, or the files themselves.",
        )


class ArchiveDuplicateMember(ExportError):
    def __init__(self, name: str, member: str, count: int) -> None:
        self.member = member
        super().__init__(
            name,
            f"the zip lists member {member!r} {count} times, so which copy is the "
            "real one is ambiguous (the archive is damaged or was appended to). "
            "Nothing was imported from it. Export the chat again, or unzip it "
            "yourself, pick the right copy and import that .txt.",
        )


class ArchiveUnreadable(ExportError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            name,
            f"the zip archive cannot be read ({reason}). Download or export it "
            "again, or unzip it yourself and import the chat .txt.",
        )


class ArchiveNoChat(ExportError):
    def __init__(self, name: str, members: list[str]) -> None:
        shown = ", ".join(members[:5]) or "nothing"
        super().__init__(
            name,
            f"the zip holds no chat text file (found: {shown}). A WhatsApp export "
            "zip holds '_chat.txt' (iPhone) or 'WhatsApp Chat with NAME.txt' "
            "(Android); import that file or the zip that 'Export chat' made.",
        )


class ArchiveAmbiguous(ExportError):
    """A zip holds chat files of several chats where one chat was asked for."""

    def __init__(
        self, name: str, candidates: list[str], option: str | None = None
    ) -> None:
        self.candidates = candidates
        shown = ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "")
        if option is None:
            super().__init__(
                name,
                f"the zip holds {len(candidates)} chat files ({shown}). Unzip it "
                "and import each chat file by path.",
            )
            return
        super().__init__(
            name,
            f"the zip holds {len(candidates)} chat files of different chats "
            f"({shown}), and {option} names one chat, so none was imported. Leave "
            f"out {option} to import each file as its own chat (named from its "
            f"file name), or unzip the zip and import each file with its own "
            f"{option}.",
        )


class ArchiveUnsafe(ExportError):
    def __init__(self, name: str, member: str) -> None:
        self.member = member
        super().__init__(
            name,
            f"member {member!r} would be written outside the archive's folder "
            "(an absolute path or '..'), which no WhatsApp export contains. The "
            "archive was not read; do not unzip it either.",
        )


class ArchiveTooLarge(ExportError):
    def __init__(self, name: str, member: str | list[str], detail: str) -> None:
        self.member = member
        if isinstance(member, str):
            what = f"member {member!r}"
        else:  # several chat members, counted together
            shown = ", ".join(map(repr, member[:5])) + (", ..." if len(member) > 5
                                                        else "")
            what = f"the {len(member)} chat members ({shown}) together"
        super().__init__(
            name,
            f"{what} {detail}, beyond what a chat export holds (a zip "
            "bomb or a damaged file). It was not expanded. Check where the file "
            "came from and export the chat again.",
        )


class DateOrderConflict(ExportError):
    """An export of a chat read in another date order than an earlier import of it,
    where one of the two orders was a default or a hint, not read from the file: the
    same messages would land again under other dates."""

    def __init__(self, name: str, order: str, reason: str, chat_id: str,
                 earlier: str, earlier_order: str, earlier_decided: bool) -> None:
        how = "read from that file" if earlier_decided else "a default then"
        super().__init__(
            name,
            f"its dates read as {order} ({reason}), but chat {chat_id} was imported "
            f"before from {earlier} as {earlier_order} ({how}), and one day-month "
            "order is wrong: importing would add its messages again under other "
            f"dates. If this file is read right, remove the earlier import's rows "
            f"(walake forget --chat {chat_id} --allow-again) and import both files "
            f"again with --date-order {order}; if the earlier one is, pass "
            f"--date-order {earlier_order}.",
        )


class ZoneUnknown(IngestError):
    def __init__(self, zone: str) -> None:
        self.zone = zone
        super().__init__(
            f"--tz {zone!r} is not a time zone this machine knows. Pass an IANA "
            "name such as Europe/Berlin or America/New_York (install the tzdata "
            "package if none are found).",
        )
