"""The time zone export timestamps are read in: --tz, else this machine's zone."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.sources.export.errors import ZoneUnknown

LOCALTIME = Path("/etc/localtime")


def resolve_zone(name: str | None) -> tuple[tzinfo, str]:
    """The zone to read local times in, and the name to report it by."""
    if name:
        return _named(name), name
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        try:
            return ZoneInfo(env), env
        except (ZoneInfoNotFoundError, ValueError):
            pass
    linked = _linked_zone_name()
    if linked:
        return ZoneInfo(linked), linked
    if LOCALTIME.exists():
        with LOCALTIME.open("rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime"), "localtime"
    return UTC, "UTC"


def _named(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ZoneUnknown(name) from exc


def _linked_zone_name() -> str | None:
    """'Europe/Berlin' when /etc/localtime links into a zoneinfo tree."""
    try:
        target = os.path.realpath(LOCALTIME)
    except OSError:
        return None
    marker = "/zoneinfo/"
    if marker not in target:
        return None
    name = target.split(marker, 1)[1]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def to_utc(local: datetime, zone: tzinfo) -> tuple[datetime, int]:
    """UTC time and offset in minutes of a naive local time.

    Ambiguous wall times (the repeated hour when clocks go back) take the first,
    fold=0; times skipped when clocks go forward take the offset before the jump.
    """
    offset = zone.utcoffset(local) or timedelta(0)
    return (local - offset).replace(tzinfo=UTC), int(offset.total_seconds() // 60)


class HourlyOffsets:
    """`to_utc` for many times, computing the offset once per local hour.

    An hour is used as a whole only when its first and last second have the same
    offset, so an hour holding a transition is computed time by time, as `to_utc`.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.start = self.end = datetime.min
        self.offset: timedelta | None = None
        self.minutes = 0

    def utc(self, local: datetime) -> tuple[datetime, int]:
        if not self.start <= local < self.end:
            self._enter_hour(local)
        if self.offset is None:
            return to_utc(local, self.zone)
        return (local - self.offset).replace(tzinfo=UTC), self.minutes

    def minutes_at(self, local: datetime) -> int:
        """The UTC offset in minutes at a local time, as `to_utc` gives it."""
        if not self.start <= local < self.end:
            self._enter_hour(local)
        if self.offset is None:
            return to_utc(local, self.zone)[1]
        return self.minutes

    def _enter_hour(self, local: datetime) -> None:
        self.start = local.replace(minute=0, second=0, microsecond=0)
        self.end = self.start + timedelta(hours=1)
        first = self.zone.utcoffset(self.start) or timedelta(0)
        last = self.zone.utcoffset(self.end - timedelta(seconds=1)) or timedelta(0)
        self.offset = first if first == last else None
        self.minutes = int(first.total_seconds() // 60)
