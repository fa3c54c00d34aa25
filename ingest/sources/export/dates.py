"""Header dates and times: the file's date order, and string -> value caches.

The order (day/month/year, month/day/year or year/month/day) is decided once per file
from all its distinct dates: which orders give valid dates, then chronology, then which
field changes most. When the file cannot tell, the caller's hint or `dmy` applies and
the decision says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

ORDERS = ("dmy", "mdy", "ymd")
DEFAULT_ORDER = "dmy"
DIGITS = re.compile(r"\d+")
TIME = re.compile(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(.*)", re.S)

# Day-period markers after removing dots and spaces and case-folding (H15-H17).
AM = frozenset({"am", "上午", "午前", "오전"})
PM = frozenset({"pm", "下午", "午後", "오후"})
SPACES = str.maketrans("", "", ". \u00a0\u202f\u2009")


@dataclass(frozen=True)
class OrderDecision:
    order: str
    decided: bool
    reason: str


def split_date(raw: str) -> tuple[int, int, int, int]:
    """The three numbers of a header date plus the width of the first one."""
    first, second, third = DIGITS.findall(raw)[:3]
    return int(first), int(second), int(third), len(first)


def to_ymd(fields: tuple[int, int, int, int], order: str) -> tuple[int, int, int]:
    a, b, c, _ = fields
    if order == "ymd":
        year, month, day = a, b, c
    elif order == "mdy":
        month, day, year = a, b, c
    else:
        day, month, year = a, b, c
    # Two-digit years are this century (H5).
    return (year + 2000 if year < 100 else year), month, day


def make_date(fields: tuple[int, int, int, int], order: str) -> date | None:
    try:
        return date(*to_ymd(fields, order))
    except ValueError:
        return None


def decide_order(raw_dates: list[str], hint: str | None = None) -> OrderDecision:
    """Decide the date order from the distinct header dates, in file order."""
    fields = [split_date(raw) for raw in raw_dates]
    if not fields:
        return OrderDecision(hint or DEFAULT_ORDER, False, "no dates")
    if fields[0][3] == 4:
        return OrderDecision("ymd", True, "the year comes first")
    candidates = ("dmy", "mdy")
    valid = [o for o in candidates if all(make_date(f, o) for f in fields)]
    if len(valid) == 1:
        position = "second" if valid[0] == "mdy" else "first"
        return OrderDecision(valid[0], True, f"a value over 12 in the {position} field")
    if not valid:
        best = max(candidates, key=lambda o: sum(bool(make_date(f, o)) for f in fields))
        return OrderDecision(best, True, "most dates are valid in this order")
    return _decide_between_valid(fields, hint)


def _decide_between_valid(
    fields: list[tuple[int, int, int, int]], hint: str | None
) -> OrderDecision:
    backwards = {o: _backward_steps(fields, o) for o in ("dmy", "mdy")}
    if len(fields) >= 3 and backwards["dmy"] != backwards["mdy"]:
        order = min(backwards, key=backwards.__getitem__)
        return OrderDecision(order, True, "dates run forward in this order")
    first = sum(a[0] != b[0] for a, b in zip(fields, fields[1:]))
    second = sum(a[1] != b[1] for a, b in zip(fields, fields[1:]))
    if len(fields) >= 3 and first != second:
        order = "dmy" if first > second else "mdy"
        return OrderDecision(order, True, "the day field changes most")
    chosen = hint or DEFAULT_ORDER
    how = "--date-order" if hint else "the default; pass --date-order to choose"
    return OrderDecision(chosen, False, f"undecidable from the file; applied {how}")


def _backward_steps(fields: list[tuple[int, int, int, int]], order: str) -> int:
    days = [make_date(f, order) for f in fields]
    return sum(1 for a, b in zip(days, days[1:]) if a and b and b < a)


def parse_time(raw: str) -> tuple[int, int, int] | None:
    """Hours, minutes, seconds of a header time, or None if it is not a clock time."""
    found = TIME.fullmatch(raw)
    if found is None:
        return None
    hour, minute = int(found.group(1)), int(found.group(2))
    second = int(found.group(3) or 0)
    marker = found.group(4).translate(SPACES).casefold()
    if marker:
        if not 1 <= hour <= 12:
            return None
        if marker in AM:
            hour = 0 if hour == 12 else hour
        elif marker in PM:
            hour = 12 if hour == 12 else hour + 12
        else:
            return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second
