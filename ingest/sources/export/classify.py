"""What a message body is: media placeholder, deletion, edit trailer, location, event.

Every pattern is localized where the exports are (see export-formats.md, B11-B18).
Checks run only on bodies a cheap test flags, so plain text costs one or two lookups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LRM = "\u200e"

# Android, media left out of the export (B11).
MEDIA_OMITTED = frozenset({
    "<Media omitted>", "<Medien ausgeschlossen>", "<Multimedia omitido>",
    "<Médias omis>", "<Mídia oculta>", "<Media omessi>", "<Media weggelaten>",
    "<Media utelämnad>", "<Media udeladt>", "<Media utelatt>", "<Media jätetty pois>",
    "<Pominięto multimedia>", "<Medya dahil edilmedi>",
    "<Медиафайл пропущен>",
    "<Без медиафайлов>", "<Mídia omitida>", "<Archivo omitido>",
})

# Android media-included: "FILE (file attached)", caption on the next line (B12).
FILE_ATTACHED = re.compile(
    r"(?P<file>[^\n]+?) \((?:file attached|Datei angehängt|archivo adjunto|"
    r"fichier joint|arquivo anexado|file allegato|bestand bijgevoegd|"
    r"fil bifogad|fil vedhæftet|liitetty tiedosto|załączony plik|dosya ekli|"
    r"файл прикреплен)\)"
)

# iOS puts a document's title (and a PDF's page count) before its placeholder:
# "TITLE • N pages document omitted" (B14), "TITLE • N pages <attached: FILE>".
DOC_TITLE = r"(?P<title>[^\n]+) • (?:\d+ pages? )?"

# iOS media-included "<attached: NAME>" (B13) and old iOS "NAME <attached>" (B15).
IOS_ATTACHED = re.compile(
    rf"(?:{DOC_TITLE})?<(?:attached|Anhang|adjunto|pièce jointe|anexo|allegato|"
    r"bijlage|bifogad|liite|załącznik): (?P<file>[^>\n]+)>"
)
OLD_IOS_ATTACHED = re.compile(r"(?P<file>[^\n<]+?) <\u200e?attached>")

# iOS media-less "... omitted" placeholders (B14), lower-cased kind word -> kind.
IOS_OMITTED = re.compile(
    rf"(?:{DOC_TITLE}document omitted|"
    r"(?P<kind>image|video|audio|GIF|sticker|Contact card|document) omitted|"
    r"(?P<de>Bild|Video|Audio|GIF|Sticker|Kontaktkarte|Dokument) weggelassen|"
    r"(?P<es>imagen|video|audio|GIF|sticker|tarjeta de contacto) omitid[oa])"
)
OMITTED_KINDS = {
    "image": "photo", "video": "video", "audio": "audio", "gif": "video",
    "sticker": "sticker", "contact card": "contact", "document": "document",
    "bild": "photo", "kontaktkarte": "contact", "dokument": "document",
    "imagen": "photo", "tarjeta de contacto": "contact",
}

# File-name prefixes WhatsApp gives attachments -> kind.
NAME_KINDS = (
    ("IMG-", "photo"), ("VID-", "video"), ("PTT-", "voice"), ("AUD-", "audio"),
    ("STK-", "sticker"), ("GIF-", "video"), ("DOC-", "document"),
)
IOS_NAME_KIND = re.compile(r"\d+-(PHOTO|VIDEO|AUDIO|GIF|STICKER|CONTACT)-")
IOS_KINDS = {"PHOTO": "photo", "VIDEO": "video", "AUDIO": "audio", "GIF": "video",
             "STICKER": "sticker", "CONTACT": "contact"}
EXTENSION_KINDS = {
    "jpg": "photo", "jpeg": "photo", "png": "photo", "webp": "sticker",
    "heic": "photo", "mp4": "video", "mov": "video", "3gp": "video",
    "opus": "voice", "ogg": "audio", "m4a": "audio", "mp3": "audio",
    "aac": "audio", "vcf": "contact",
}

# Kind -> the lake's media_type (MCP uses image/video/audio/document).
MEDIA_TYPES = {
    "photo": "image", "video": "video", "audio": "audio", "voice": "audio",
    "document": "document", "sticker": "sticker", "contact": "contact",
}

DELETED = frozenset({
    "This message was deleted", "You deleted this message",
    "This message was deleted.", "You deleted this message.",
    "Diese Nachricht wurde gelöscht", "Du hast diese Nachricht gelöscht",
    "Se eliminó este mensaje", "Eliminaste este mensaje",
    "Ce message a été supprimé", "Vous avez supprimé ce message",
    "Mensagem apagada", "Você apagou esta mensagem",
    "Questo messaggio è stato eliminato", "Hai eliminato questo messaggio",
    "Dit bericht is verwijderd", "Je hebt dit bericht verwijderd",
})

EDITED_TRAILERS = (
    " <This message was edited>", " <Diese Nachricht wurde bearbeitet>",
    " <Se editó este mensaje>", " <Ce message a été modifié>",
    " <Mensagem editada>", " <Questo messaggio è stato modificato>",
    " <Dit bericht is bewerkt>",
)

LOCATION = re.compile(
    r"(?:^|\n)(?:location|Location|Standort|ubicación|Ubicación|position): "
    r"https://maps\.google\.com/|^live location shared$|^Live-Standort geteilt$"
)

# Event phrases: an author candidate that holds one is the start of a system line.
SYSTEM_VERBS = re.compile(
    r"(?:created group|created this group|added|removed|left|joined|changed|"
    r"deleted this group's icon|was added|was removed|hat die Gruppe|hat .+ "
    r"hinzugefügt|a créé le groupe|a ajouté|creó el grupo|añadió|cambió)\b"
)
QUOTES = frozenset("“”\"«»„")

# iOS attributed events that start without the LRM cue in some versions.
SYSTEM_PHRASES = re.compile(
    r"Messages and calls are end-to-end encrypted|Messages to this group are now "
    r"secured|Your security code with|Nachrichten und Anrufe sind "
    r"Ende-zu-Ende-verschlüsselt|Los mensajes y las llamadas están cifrados"
)


@dataclass(slots=True)
class BodyInfo:
    """What the classifier found in a body; text is the body without trailers."""

    text: str
    is_media: bool = False
    is_deleted: bool = False
    is_edited: bool = False
    is_location: bool = False
    attachment: str | None = None
    media_kind: str | None = None
    caption: str | None = None
    title: str | None = None  # a document's title (B12, B14); not a caption


def needs_classifying(body: str) -> bool:
    """Cheap pre-test: only bodies that may hold a placeholder or trailer pass."""
    if not body:
        return False
    last = body[-1]
    if "\n" in body:
        first = body[: body.index("\n")]
        if first and first[-1] in ">)":
            return True
    return (last in ">)" or body[0] == "<" or "maps.google" in body
            or body in DELETED or "location shared" in body
            or "Standort" in body or "omitted" in body or "omitid" in body
            or "weggelassen" in body)


def kind_from_name(name: str) -> str:
    """The media kind a WhatsApp attachment file name implies."""
    for prefix, kind in NAME_KINDS:
        if name.startswith(prefix):
            return kind
    found = IOS_NAME_KIND.match(name)
    if found:
        return IOS_KINDS[found.group(1)]
    extension = name.rpartition(".")[2].lower()
    return EXTENSION_KINDS.get(extension, "document")


def classify_body(body: str) -> BodyInfo:
    """Find the placeholder, deletion, edit and location cues in one body."""
    info = BodyInfo(body)
    for trailer in EDITED_TRAILERS:
        if body.endswith(trailer):
            info.text = body = body[: -len(trailer)]
            info.is_edited = True
            break
    if body in DELETED:
        info.is_deleted = True
        return info
    first, _, rest = body.partition("\n")
    if first in MEDIA_OMITTED:
        info.is_media = True
        return _with_caption(info, rest)
    if _attached(info, first, rest):
        return info
    omitted = IOS_OMITTED.fullmatch(first)
    if omitted:
        info.is_media = True
        info.media_kind = _omitted_kind(omitted)
        info.title = omitted.group("title")
        return _with_caption(info, rest)
    if LOCATION.search(body):
        info.is_location = True
    return info


def _attached(info: BodyInfo, first: str, rest: str) -> bool:
    for pattern in (FILE_ATTACHED, IOS_ATTACHED, OLD_IOS_ATTACHED):
        found = pattern.fullmatch(first)
        if found:
            name = found.group("file")
            info.is_media = True
            info.attachment = name
            info.media_kind = kind_from_name(name)
            info.title = found.groupdict().get("title")
            if info.title is None and info.media_kind == "document":
                # Android repeats a document's title on the next line (B12); the
                # lines after it, if any, are the caption.
                head, _, tail = rest.partition("\n")
                if head in (name, name.rpartition(".")[0] or name):
                    info.title, rest = head, tail
            _with_caption(info, rest)
            return True
    return False


def _with_caption(info: BodyInfo, rest: str) -> BodyInfo:
    if rest:
        info.caption = rest
    return info


def _omitted_kind(found: re.Match[str]) -> str:
    if found.group("title") is not None:
        return "document"
    word = found.group("kind") or found.group("de") or found.group("es")
    return OMITTED_KINDS.get(word.lower(), "document")


def is_system_author(candidate: str, known_authors: set[str]) -> bool:
    """True when an 'author' is really the start of an Android event line.

    The first ': ' of an event can sit inside a quoted group subject (B5), so a
    candidate holding a quote mark, or a known participant followed by an event
    verb, is an event, not an author.
    """
    if not QUOTES.isdisjoint(candidate):
        return True
    if candidate.startswith("You "):
        return SYSTEM_VERBS.match(candidate, 4) is not None
    for author in known_authors:
        if (author != candidate and candidate.startswith(author + " ")
                and SYSTEM_VERBS.match(candidate, len(author) + 1)):
            return True
    return False
