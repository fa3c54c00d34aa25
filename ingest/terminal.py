"""Text from the lake made safe to show on a terminal.

Chat names, sender names and message text are written by anyone in a chat. Shown
raw, an escape sequence in them could clear the screen, set the window title or
recolour what follows, and a bidi override could reorder what is shown. Every
printer of lake data passes its text through `visible`, which shows such characters
as escapes (`\\x1b`, `\\u202e`). Files written with --out keep the data as it is.
"""

from __future__ import annotations

from rich.text import Text

# C0 controls, DEL, C1 controls, and the bidi embeddings, overrides and isolates
CONTROLS = (
    [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
    + [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_ESCAPES = {code: _escape(code) for code in CONTROLS}
# Layouts that show several lines keep these two
_ESCAPES_KEEPING_LINES = {
    code: text for code, text in _ESCAPES.items() if chr(code) not in "\n\t"
}


def visible(text: str, *, keep_lines: bool = False) -> str:
    """`text` with every control and bidi control character shown as an escape.

    With `keep_lines`, newlines and tabs stay (for output laid out in lines).
    """
    return text.translate(_ESCAPES_KEEPING_LINES if keep_lines else _ESCAPES)


def cell(text: str) -> Text:
    """A table cell of lake text: escapes visible, and never read as rich markup."""
    return Text(visible(text))


# JSON escapes C0 itself; these others are escaped too, which keeps the data as is
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in CONTROLS if code >= 0x7F}


def json_visible(text: str) -> str:
    """JSON text (json.dumps, ensure_ascii=False) with DEL, C1 and bidi controls as
    \\u escapes: the same data once parsed, and nothing a terminal acts on."""
    return text.translate(_JSON_ESCAPES)


def stdout_text(text: str, fmt: str, stream: object) -> str:
    """What to write of `text` in format `fmt` to `stream`: JSON always in the
    escaped form; other text with visible escapes when `stream` is a terminal."""
    if fmt == "json":
        return json_visible(text)
    isatty = getattr(stream, "isatty", None)
    return visible(text, keep_lines=True) if isatty and isatty() else text
