"""The monitor: pull what is new on an interval, alert on hot messages, keep statistics.

One session keeps its sources started and runs ticks until its deadline or a stop.
A tick lists the chats, pulls those whose last activity changed (and, once more,
those pulled the tick before, for messages that arrive within the same second) from
their cursors through `ingest.extract.pull_once`, then scores the new rows with the
views and records alerts (`ingest.monitor_alerts`). A failed tick is counted and the
next one follows after a backoff; the sources restart dead servers themselves.

Whatever stops a session, the lake holds whole batches, their cursors and the alerts
recorded for them; the next monitor or extract continues from there. Session
statistics live in the manifest's run history (command "monitor").
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.extract import (
    ExtractOptions,
    ExtractSummary,
    Source,
    pull_once,
    started_sources,
)
from ingest.lake.writer import LakeWriter, PendingBatch
from ingest.monitor_alerts import SECTION, Alert, Scored, notify, record_alerts
from ingest.sources.decode import Chat

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
SAVE_EVERY_TICKS = 10  # quiet ticks between saves of the session statistics
ERROR_HISTORY = 20  # recent error messages kept with the session

EventFn = Callable[[str, Any], None]


def _quiet(kind: str, info: Any) -> None:
    return None


@dataclass(frozen=True)
class MonitorOptions:
    interval_seconds: float = 30.0
    threshold: float = 2.0
    duration_seconds: float | None = None  # None: until stopped
    max_history: int = 1000  # recent alerts kept in memory for display
    notify_command: str | None = None
    keywords_dir: Path | None = None
    extract: ExtractOptions = field(default_factory=ExtractOptions)


@dataclass
class MonitorStats:
    """The session's statistics, as stored in the manifest's run record."""

    session_id: str
    source: str
    started_at: str
    status: str = "running"
    finished_at: str | None = None
    ticks: int = 0
    ticks_failed: int = 0
    chats_pulled: int = 0
    messages: int = 0
    alerts: int = 0
    errors: int = 0
    notify_failures: int = 0
    tick_seconds_last: float = 0.0
    tick_seconds_max: float = 0.0
    tick_seconds_total: float = 0.0
    lag_seconds_last: float | None = None
    lag_seconds_max: float | None = None
    last_tick_at: str | None = None
    recent_errors: list[str] = field(default_factory=list)

    @property
    def tick_seconds_mean(self) -> float:
        return self.tick_seconds_total / self.ticks if self.ticks else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tick_seconds_mean"] = round(self.tick_seconds_mean, 3)
        return data

    def note_error(self, message: str) -> None:
        self.errors += 1
        self.recent_errors.append(message)
        del self.recent_errors[:-ERROR_HISTORY]


@dataclass(frozen=True)
class TickReport:
    """One tick, as reported to the caller's `on_event("tick", ...)`."""

    number: int
    chats_listed: int
    chats_pulled: int
    messages: int
    alerts: int
    seconds: float
    lag_seconds: float | None
    failed_chats: dict[str, str]


class MonitorSession:
    """The state of one monitor session between ticks; memory stays bounded."""

    def __init__(
        self,
        writer: LakeWriter,
        sources: list[Source],
        options: MonitorOptions,
        on_event: EventFn = _quiet,
    ) -> None:
        self.writer = writer
        self.sources = sources
        self.options = options
        self.on_event = on_event
        self.stats = MonitorStats(
            session_id=uuid.uuid4().hex[:12],
            source=sources[0].key,
            started_at=datetime.now(UTC).isoformat(),
        )
        self.recent: deque[Alert] = deque(maxlen=options.max_history)
        self.last_active: dict[str, str | None] = {}  # per chat, as last pulled
        self.settle: set[str] = set()  # chats pulled last tick: pull once more
        self.known: set[str] | None = None  # every chat listed so far
        self._run = self.stats.to_json() | {"command": "monitor"}
        self._since_save = 0

    # Ticks

    async def tick(self) -> TickReport:
        """Pull what is new, land it, record and report its alerts."""
        started = time.monotonic()
        number = self.stats.ticks + 1
        opts = self.options.extract
        chats = await self.sources[0].fetch_chats(opts.include_status)
        chosen = chats[: opts.max_chats]
        changed = await self._changed()
        due = [c for c in chosen if self._due(c) or c.chat_id in changed]
        moved = {c.chat_id for c in due if self._moved(c)}
        alert_after = self._alert_after(due)
        self.known = (self.known or set()) | {c.chat_id for c in chats}

        summary = ExtractSummary(source=self.stats.source)
        await pull_once(self.writer, self.sources, due, opts, summary,
                        batch_extra=_marks(alert_after))
        for chat in due:
            if chat.chat_id not in summary.failed_chats:
                self.last_active[chat.chat_id] = chat.last_active
        self.settle = moved
        scored = await asyncio.to_thread(
            record_alerts, self.writer, self.stats.session_id,
            self.options.threshold, self.options.keywords_dir,
        )

        seconds = time.monotonic() - started
        report = TickReport(number, len(chats), len(due), summary.messages,
                            len(scored.alerts), seconds, scored.lag_max,
                            dict(summary.failed_chats))
        self._count(report, scored)
        await self._announce(scored.alerts)
        return report

    def _due(self, chat: Chat) -> bool:
        """A chat is pulled when its last activity moved, or it moved last tick.

        The second pull catches messages that arrived within the second the
        listing already showed (last activity has whole seconds only).
        """
        return self._moved(chat) or chat.chat_id in self.settle

    async def _changed(self) -> set[str]:
        """Chats with rows written since they were last pulled, whatever the rows'
        times and the chat's listed activity say (a late delivery, a second row in
        a second already pulled): sources that can tell (the bridge store, by
        rowid) are asked with each chat's cursor mark."""
        find = getattr(self.sources[0], "changed_chats", None)
        if find is None:
            return set()
        assert self.writer.manifest is not None
        cursors = self.writer.manifest.cursors(self.stats.source)
        marks = {chat_id: cursor["mark"] for chat_id, cursor in cursors.items()
                 if cursor and cursor.get("mark") is not None}
        return await find(marks)

    def _moved(self, chat: Chat) -> bool:
        if chat.last_active is None:  # a server that does not say: always pull
            return True
        return self.last_active.get(chat.chat_id, "") != chat.last_active

    def _alert_after(self, due: list[Chat]) -> dict[str, str | None]:
        """Per chat, the local second from which pulled rows are new (None: none).

        A chat with a cursor: from its newest landed second. A chat without one is
        history on the first tick, and new from its first message after that.
        """
        assert self.writer.manifest is not None
        cursors = self.writer.manifest.cursors(self.stats.source)
        found: dict[str, str | None] = {}
        for chat in due:
            ranges = (cursors.get(chat.chat_id) or {}).get("ranges") or []
            if ranges:
                found[chat.chat_id] = ranges[0]["hi"]
            elif self.known is not None and chat.chat_id not in self.known:
                found[chat.chat_id] = ""
            else:
                found[chat.chat_id] = None
        return found

    def _count(self, report: TickReport, scored: Scored) -> None:
        s = self.stats
        s.ticks += 1
        s.chats_pulled += report.chats_pulled
        s.messages += report.messages
        s.alerts += report.alerts
        s.tick_seconds_last = round(report.seconds, 3)
        s.tick_seconds_max = round(max(s.tick_seconds_max, report.seconds), 3)
        s.tick_seconds_total += report.seconds
        s.last_tick_at = datetime.now(UTC).isoformat()
        if scored.lag_max is not None:
            s.lag_seconds_last = round(scored.lag_max, 3)
            s.lag_seconds_max = round(max(s.lag_seconds_max or 0.0, scored.lag_max), 3)
        for chat_id, error in report.failed_chats.items():
            s.note_error(f"chat {chat_id}: {error}")
        busy = report.messages or report.alerts or report.failed_chats
        self.save_stats(force=bool(busy))

    async def _announce(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.recent.append(alert)
            self.on_event("alert", alert)
            if self.options.notify_command:
                problem = await notify(self.options.notify_command, alert)
                if problem:
                    self.stats.notify_failures += 1
                    self.stats.note_error(problem)
                    self.on_event("error", problem)

    # Statistics in the manifest

    def start_run(self) -> None:
        self.writer.record_run(self._run)

    def save_stats(self, force: bool = False) -> None:
        """Copy the statistics into the run record; save now and then, or if forced."""
        assert self.writer.manifest is not None
        self._run.update(self.stats.to_json())
        self._since_save += 1
        if force or self._since_save >= SAVE_EVERY_TICKS:
            self._since_save = 0
            try:
                self.writer.manifest.save()
            except OSError as exc:  # the batches are recorded; stats wait a tick
                log.warning("could not save the monitor statistics: %s", exc)

    def fail_tick(self, exc: BaseException, seconds: float) -> None:
        s = self.stats
        s.ticks += 1
        s.ticks_failed += 1
        s.tick_seconds_last = round(seconds, 3)
        s.tick_seconds_total += seconds
        s.note_error(str(exc) or type(exc).__name__)
        self.save_stats(force=True)


def _marks(alert_after: dict[str, str | None]) -> Callable[[PendingBatch], dict]:
    """The batch_extra that notes, per chat of a batch, where new rows start."""

    def extra(pending: PendingBatch) -> dict[str, Any]:
        chosen = {c: alert_after[c] for c in pending.chats
                  if alert_after.get(c) is not None}
        return {SECTION: {"alert_after": chosen}} if chosen else {}

    return extra


async def run_monitor(
    writer: LakeWriter,
    sources: list[Source],
    options: MonitorOptions,
    on_event: EventFn = _quiet,
    stop: asyncio.Event | None = None,
) -> MonitorStats:
    """Run ticks until the duration is over or `stop` is set; returns the statistics.

    Events: ("tick", TickReport), ("alert", Alert), ("error", str), ("backoff",
    seconds). Only failing to start the sources ends the session early.
    """
    stop = stop or asyncio.Event()
    session = MonitorSession(writer, sources, options, on_event)
    session.start_run()
    deadline = (
        time.monotonic() + options.duration_seconds
        if options.duration_seconds is not None else None
    )
    try:
        async with started_sources(sources):
            await _catch_up(session)
            await _loop(session, stop, deadline)
        session.stats.status = "stopped"
    except BaseException as exc:
        session.stats.status = _status(exc)
        raise
    finally:
        session.stats.finished_at = datetime.now(UTC).isoformat()
        session.save_stats(force=True)
    return session.stats


async def _catch_up(session: MonitorSession) -> None:
    """Alerts for batches a stopped session landed but did not score."""
    scored = await asyncio.to_thread(
        record_alerts, session.writer, session.stats.session_id,
        session.options.threshold, session.options.keywords_dir,
    )
    session.stats.alerts += len(scored.alerts)
    await session._announce(scored.alerts)


async def _loop(
    session: MonitorSession, stop: asyncio.Event, deadline: float | None
) -> None:
    failures = 0
    interval = session.options.interval_seconds
    while not stop.is_set() and not _past(deadline):
        started = time.monotonic()
        tick = asyncio.create_task(session.tick())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({tick, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not tick.done():  # stopped mid-tick: what is recorded stays recorded
            tick.cancel()
            await asyncio.gather(tick, return_exceptions=True)
            return
        try:
            session.on_event("tick", tick.result())
            failures = 0
            wait = interval - (time.monotonic() - started)
        except Exception as exc:  # a failed tick does not end the session
            log.warning("monitor tick failed: %s", exc)
            session.fail_tick(exc, time.monotonic() - started)
            session.on_event("error", str(exc) or type(exc).__name__)
            failures += 1
            ceiling = max(MAX_BACKOFF_SECONDS, interval)
            wait = min(interval * 2 ** (failures - 1), ceiling)
            session.on_event("backoff", wait)
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        if wait > 0:
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _status(exc: BaseException) -> str:
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return "interrupted"
    return "failed"


__all__ = [
    "MonitorOptions", "MonitorSession", "MonitorStats", "TickReport", "run_monitor",
]
