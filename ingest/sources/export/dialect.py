"""The header dialect of one export file, sniffed once and compiled to one regex.

Sniffing reads the first lines with a loose pattern, records the shape of every line
that looks like a header (brackets, date separator, the word between date and time,
time separator, seconds, day period, what follows the time) and keeps the commonest
shape. The strict regex built from it accepts only that shape, so a body line that
merely starts with a date stays in its message (export-formats.md, 0.1).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

SNIFF_LINES = 5000
SNIFF_WIDTH = 200
SPACE = "[ \u00a0\u202f\u2009]"
MARKS = "[\u200e\u200f\ufeff]*"
DAY_PERIOD = (
    r"(?:[AaPp]\.?" + SPACE + r"?[Mm]\.?|上午|下午|午前|午後|오전|오후)"
)

SNIFF = re.compile(
    "^" + MARKS + r"(?P<open>\[)?"
    r"(?P<a>\d{1,4})(?P<sep>[./-])(?P<sp>" + SPACE + r"?)(?P<b>\d{1,2})(?P=sep)"
    r"(?P=sp)(?P<c>\d{1,4})(?P<dot>\.?)"
    r"(?P<between>,?" + SPACE + r"(?:[^\W\d_]{1,6}\.?" + SPACE + r")?)"
    r"(?P<h>\d{1,2})(?P<tsep>[:.])\d{2}(?P<sec>(?P=tsep)\d{2})?"
    r"(?P<period>" + SPACE + r"?" + DAY_PERIOD + r")?"
    r"(?P<close>\] |" + SPACE + r"?-" + SPACE + r"|: | )"
)


@dataclass(frozen=True)
class Dialect:
    """One header shape; `pattern` is its strict regex."""

    brackets: bool
    date_sep: str
    date_space: bool
    date_dot: bool
    year_first: bool
    year_width: int
    between: str
    time_sep: str
    seconds: bool
    day_period: bool
    close: str

    @property
    def platform(self) -> str:
        return "ios" if self.brackets or self.close == ": " else "android"

    @property
    def clock(self) -> str:
        return "12h" if self.day_period else "24h"

    def describe(self, order: str = "dmy") -> str:
        """A readable template, e.g. '[D/M/YYYY, H:MM:SS] ' or 'D.M.YY klo H.MM - '."""
        sep = self.date_sep + (" " if self.date_space else "")
        fields = {"d": "D", "m": "M", "y": "Y" * self.year_width}
        date = sep.join(fields[letter] for letter in order)
        time = self.time_sep.join(("H", "MM", "SS")[: 3 if self.seconds else 2])
        text = date + ("." if self.date_dot else "") + _visible(self.between) + time
        text += " AM" if self.day_period else ""
        return ("[" + text + "] ") if self.brackets else text + _visible(self.close)

    def pattern(self) -> re.Pattern[str]:
        return compile_header(self)


def _visible(text: str) -> str:
    return re.sub("[\u00a0\u202f\u2009]", " ", text)


def _space_class(literal: str) -> str:
    """A literal with every space-like character widened to any of them."""
    return "".join(SPACE if ch in " \u00a0\u202f\u2009" else re.escape(ch)
                   for ch in literal)


def compile_header(d: Dialect) -> re.Pattern[str]:
    """The strict header regex: groups d (date), t (time), r (rest of the line)."""
    sep = re.escape(d.date_sep) + (SPACE if d.date_space else "")
    year = r"\d{4}" if d.year_width == 4 else r"\d{2}"
    if d.year_first:
        date = year + sep + r"\d{1,2}" + sep + r"\d{1,2}"
    else:
        date = r"\d{1,2}" + sep + r"\d{1,2}" + sep + year
    date += r"\." if d.date_dot else ""
    tsep = re.escape(d.time_sep)
    time = r"\d{1,2}" + tsep + r"\d{2}" + (tsep + r"\d{2}" if d.seconds else "")
    time += (SPACE + "?" + DAY_PERIOD) if d.day_period else ""
    opening = r"\[" if d.brackets else ""
    return re.compile(
        "^" + MARKS + opening + "(?P<d>" + date + ")" + _space_class(d.between)
        + "(?P<t>" + time + ")" + _space_class(d.close) + "(?P<r>.*)",
        re.S,
    )


def sniff_dialect(lines: list[str]) -> Dialect | None:
    """The commonest header shape among the first lines, or None if there is none."""
    seen: Counter[tuple] = Counter()  # what decides a line's shape (`_shape`)
    for line in lines[:SNIFF_LINES]:
        found = SNIFF.match(line[:SNIFF_WIDTH])
        if found is None:
            continue
        opening, close, between, sep, space, dot, a, c, tsep, sec, period = \
            found.group("open", "close", "between", "sep", "sp", "dot", "a", "c",
                        "tsep", "sec", "period")
        seen[(opening is not None, close, between, sep, bool(space), bool(dot),
              len(a), len(c), tsep, sec is not None, period is not None)] += 1
    shapes: Counter[Dialect] = Counter()
    for key, count in seen.items():  # in order of first sight, as the lines
        shape = _shape(*key)
        if shape is not None and shape.year_width in (2, 4):
            shapes[shape] += count
    if not shapes:
        return None
    return _prefer_specific(shapes)


def _shape(  # noqa: PLR0913 - what `sniff_dialect` reads of one header line
    brackets: bool, close: str, between: str, sep: str, date_space: bool,
    date_dot: bool, a_width: int, c_width: int, tsep: str, seconds: bool,
    day_period: bool,
) -> Dialect | None:
    """The dialect one loosely matched header line has, or None if inconsistent."""
    if brackets != (close == "] "):
        return None
    return Dialect(
        brackets=brackets,
        date_sep=sep,
        date_space=date_space,
        date_dot=date_dot,
        year_first=a_width == 4,
        year_width=4 if a_width == 4 else c_width,
        between=re.sub("[\u00a0\u202f\u2009]", " ", between),
        time_sep=tsep,
        seconds=seconds,
        day_period=day_period,
        close=re.sub("[\u00a0\u202f\u2009]", " ", close),
    )


def _prefer_specific(shapes: Counter[Dialect]) -> Dialect:
    """The commonest shape; a bare-space close loses ties to ' - ' and ': '."""
    ranked = sorted(shapes.items(), key=lambda item: (-item[1], item[0].close == " "))
    return ranked[0][0]
