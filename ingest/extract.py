"""Extract: pull chats from a source into the lake, resumably.

Workers (one server process each) pull different chats and hand chunks to a single
committer, which groups them into batches of `batch_size` chats (or fewer rows than
the memory budget allows) and lands each batch with the cursors it moves. Whatever
stops a run, the lake holds whole recorded batches and cursors that match them; the
next run continues from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ingest.cursor import ChatCursor
from ingest.errors import IngestError, ToolFailed
from ingest.lake.writer import CursorMove, LakeWriter, PendingBatch
from ingest.pull import Chunk, walk_chat
from ingest.sources.decode import Chat

log = logging.getLogger(__name__)
ROWS_PER_MB = 200  # rows held in memory per MB of memory_limit_mb
QUEUE_CHUNKS = 4
IN_FLIGHT_PER_SERVER = 2


class Source(Protocol):
    name: str
    key: str
    page_size: int
    max_page_size: int | None

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def fetch_chats(self, include_status: bool = False) -> list[Chat]: ...
    async def fetch_page(self, chat, lo, hi_excl, limit, page=0): ...  # noqa: ANN001


@dataclass(frozen=True)
class ExtractOptions:
    max_chats: int = 50
    max_messages: int = 200
    batch_size: int = 10
    memory_limit_mb: int = 100
    chat_delay_seconds: float = 0.0
    concurrency: int = 1
    include_status: bool = False
    recheck: bool = False  # read again all the cursors cover (late rows over MCP)

    @property
    def max_rows_per_batch(self) -> int:
        return max(1000, self.memory_limit_mb * ROWS_PER_MB)


@dataclass
class ExtractSummary:
    source: str
    chats_listed: int = 0
    chats_selected: int = 0
    chats_done: int = 0
    messages: int = 0
    new_messages: int = 0  # of `messages`, those the lake held for no source before
    batches: int = 0
    raw_bytes: int = 0
    parquet_bytes: int = 0
    calls: int = 0
    retries: int = 0
    seconds: float = 0.0
    leftovers_removed: int = 0
    failed_chats: dict[str, str] = field(default_factory=dict)
    status: str = "running"

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["messages_per_second"] = round(self.rate, 1)
        return data


ProgressFn = Callable[[str, dict[str, Any]], None]


def _quiet(kind: str, info: dict[str, Any]) -> None:
    return None


async def run_extract(
    writer: LakeWriter,
    sources: list[Source],
    options: ExtractOptions,
    on_progress: ProgressFn = _quiet,
) -> ExtractSummary:
    """Bring the selected chats up to date in the lake; safe to interrupt anywhere."""
    assert writer.manifest is not None
    first = sources[0]
    summary = ExtractSummary(source=first.key, leftovers_removed=len(writer.leftovers))
    started = time.monotonic()
    run = _start_run(writer, first.key, options)
    try:
        async with started_sources(sources):
            chats = await list_chats(first, options, summary, on_progress)
            await pull_once(writer, sources, chats, options, summary, on_progress)
        summary.status = "partial" if summary.failed_chats else "ok"
    except BaseException as exc:
        summary.status = "interrupted" if _is_interrupt(exc) else "failed"
        raise
    finally:
        summary.calls = sum(getattr(s, "calls", 0) for s in sources)
        summary.retries = sum(getattr(s, "retries", 0) for s in sources)
        summary.seconds = time.monotonic() - started
        _finish_run(writer, run, summary)
    return summary


@asynccontextmanager
async def started_sources(sources: list[Source]) -> AsyncIterator[list[Source]]:
    """Start every source's server at once; close them all on the way out.

    The sources stay started for as long as the block runs, so a long-lived caller
    (the monitor) pulls many times over the same server processes.
    """
    starts = (s.start() for s in sources)
    results = await asyncio.gather(*starts, return_exceptions=True)
    try:
        for result in results:
            if isinstance(result, BaseException):
                raise result
        yield sources
    finally:
        await asyncio.gather(*(s.close() for s in sources), return_exceptions=True)


async def list_chats(
    source: Source,
    options: ExtractOptions,
    summary: ExtractSummary,
    on_progress: ProgressFn = _quiet,
) -> list[Chat]:
    """The chats to pull: the `max_chats` most recently active."""
    chats = await source.fetch_chats(options.include_status)
    summary.chats_listed = len(chats)
    if not chats:
        # lharries answers a failed query (a locked store) as it answers no chats
        log.warning("the server listed no chats, so nothing was pulled; if it has "
                    "chats, its database query failed (a store the bridge keeps "
                    "locked): run again")
    chosen = chats[: options.max_chats]
    summary.chats_selected = len(chosen)
    on_progress("chats", {"total": len(chosen)})
    return chosen


BatchExtra = Callable[[PendingBatch], dict[str, Any]]


async def pull_once(
    writer: LakeWriter,
    sources: list[Source],
    chats: list[Chat],
    options: ExtractOptions,
    summary: ExtractSummary,
    on_progress: ProgressFn = _quiet,
    batch_extra: BatchExtra | None = None,
) -> None:
    """Pull `chats` from their cursors over started sources and land what is new.

    Workers (one per source) and the committer; a chat the server cannot serve is
    noted in `summary.failed_chats` and the others go on. `batch_extra` may add
    fields to each batch's manifest record (the monitor notes what to alert on).
    """
    plan = Plan(asyncio.Queue(), asyncio.Queue(maxsize=QUEUE_CHUNKS),
                _held_keys(writer, sources[0].name))
    for chat in chats:
        plan.todo.put_nowait(chat)
    cursors = dict(writer.manifest.cursors(sources[0].key))  # as of the start
    committer = asyncio.create_task(
        _commit_loop(writer, plan.chunks, options, summary, on_progress, batch_extra)
    )
    workers = asyncio.create_task(_run_workers(sources, plan, cursors, options, summary))
    try:
        await asyncio.wait({committer, workers}, return_when=asyncio.FIRST_COMPLETED)
        if committer.done():
            # The committer ends early only by failing (disk full...): stop the
            # workers, which would otherwise wait forever on a full queue.
            await _cancel(workers)
            committer.result()
        await workers
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    finally:
        await _cancel(workers)  # when this run itself is cancelled (Ctrl+C)
        await _finish(plan, committer)


async def _run_workers(sources, plan, cursors, options, summary) -> None:  # noqa: ANN001
    async with asyncio.TaskGroup() as group:
        for source in sources:
            group.create_task(_worker(source, plan, cursors, options, summary))


async def _cancel(task: asyncio.Task) -> None:
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _finish(plan: Plan, committer: asyncio.Task) -> None:
    """Tell the committer to land what is queued and wait for it; its error, if any,
    is raised here (a committer that already failed takes no more chunks)."""
    ending = asyncio.create_task(plan.chunks.put(None))
    await asyncio.wait({ending, committer}, return_when=asyncio.FIRST_COMPLETED)
    await _cancel(ending)
    await committer


@dataclass
class Plan:
    todo: asyncio.Queue[Chat]
    chunks: asyncio.Queue[Chunk | None]
    held: Callable[[str], set[str]]


def _held_keys(writer: LakeWriter, source_name: str) -> Callable[[str], set[str]]:
    """The keys the lake holds for a chat, from this source (its rows' `source`):
    what a late-row sweep or a recheck must not land twice. Each chat is walked
    once per pull and these come first, so its earlier rows are all recorded."""
    return lambda chat_id: set(writer.held_keys(chat_id, source_name))


async def _worker(source, plan, cursors, options, summary) -> None:  # noqa: ANN001
    """Pull chats off the queue over this worker's started server until none are left.

    Two chats are in flight per server, so the server prepares one answer while
    this process decodes the other.
    """
    async with asyncio.TaskGroup() as group:
        # A paced source keeps one chat at a time, so its delays mean what they say
        in_flight = IN_FLIGHT_PER_SERVER if options.chat_delay_seconds == 0 else 1
        for _ in range(in_flight):
            group.create_task(_walker(source, plan, cursors, options, summary))


async def _walker(source, plan, cursors, options, summary) -> None:  # noqa: ANN001
    first_chat = True
    while not plan.todo.empty():
        chat = plan.todo.get_nowait()
        if not first_chat and options.chat_delay_seconds > 0:
            await asyncio.sleep(options.chat_delay_seconds)
        first_chat = False
        await _pull_one(source, chat, plan, cursors, options, summary)


async def _pull_one(source, chat, plan, cursors, options, summary) -> None:  # noqa: ANN001
    cursor = ChatCursor.from_json(cursors.get(chat.chat_id))
    try:
        async for chunk in walk_chat(source, chat, cursor, options.max_messages,
                                     plan.held, options.recheck):
            await plan.chunks.put(chunk)
    except ToolFailed as exc:
        # One chat the server cannot serve does not stop the others
        log.warning("chat %s failed: %s", chat.chat_id, exc)
        summary.failed_chats[chat.chat_id] = str(exc)


async def _commit_loop(  # noqa: ANN202
    writer, chunks, options, summary, on_progress, extra  # noqa: ANN001
):
    """Group chunks into batches and land them, one at a time and in order.

    A batch lands on a thread while the next one fills, so the workers (and the
    servers behind them) go on while Parquet is written and the manifest saved.
    """
    pending = PendingBatch(source=summary_source(summary))
    landing: asyncio.Task | None = None
    chats_in_batch = 0
    try:
        while (chunk := await chunks.get()) is not None:
            _add_chunk(pending, chunk, summary.source)
            on_progress("rows", {"chat": chunk.chat.name, "rows": len(chunk.rows)})
            if chunk.done:
                chats_in_batch += 1
                summary.chats_done += 1
                on_progress("chat_done", {"chat": chunk.chat.name})
            if (chats_in_batch >= options.batch_size
                    or pending.row_count >= options.max_rows_per_batch):
                if landing is not None:
                    await landing
                landing = asyncio.create_task(
                    _land(writer, pending, summary, on_progress, extra))
                pending = PendingBatch(source=pending.source)
                chats_in_batch = 0
        if landing is not None:
            await landing
        if pending.row_count or pending.moves:
            await _land(writer, pending, summary, on_progress, extra)
    finally:
        if landing is not None and not landing.done():
            # Interrupted: the batch on its thread still lands (or not) whole
            await asyncio.gather(asyncio.shield(landing), return_exceptions=True)


def summary_source(summary: ExtractSummary) -> str:
    return summary.source.split(":", 1)[0]


def _add_chunk(pending: PendingBatch, chunk: Chunk, source_key: str) -> None:
    if not chunk.rows.is_empty():
        pending.frames.append(chunk.rows)
    pending.raw.extend(chunk.raw)
    pending.chats[chunk.chat.chat_id] = (chunk.chat.name or None, chunk.chat.is_group)
    moves = [m for m in pending.moves if m.chat_id != chunk.chat.chat_id]
    moves.append(CursorMove(source_key, chunk.chat.chat_id, chunk.cursor.to_json()))
    pending.moves = moves


async def _land(writer, pending, summary, on_progress, extra=None):  # noqa: ANN001
    if extra is not None and pending.row_count:
        pending.extra.update(extra(pending))
    info = await asyncio.to_thread(writer.commit, pending)
    if info is None:
        return
    summary.messages += info.rows
    summary.new_messages += info.new_rows
    summary.batches += 1
    summary.raw_bytes += info.raw_bytes
    summary.parquet_bytes += info.parquet_bytes
    on_progress("batch", {"batch_id": info.batch_id, "rows": info.rows})


def _start_run(writer: LakeWriter, source_key: str, options: ExtractOptions) -> dict:
    run = {
        "command": "extract",
        "source": source_key,
        "started_at": datetime.now(UTC).isoformat(),
        "status": "running",
        "options": asdict(options),
    }
    writer.record_run(run)
    return run


def _finish_run(writer: LakeWriter, run: dict, summary: ExtractSummary) -> None:
    run.update({
        "finished_at": datetime.now(UTC).isoformat(),
        "status": summary.status,
        "messages": summary.messages,
        "batches": summary.batches,
        "seconds": round(summary.seconds, 3),
        "messages_per_second": round(summary.rate, 1),
        "calls": summary.calls,
        "retries": summary.retries,
        "failed_chats": len(summary.failed_chats),
    })
    try:
        writer.manifest.save()
    except OSError as exc:  # the run's batches are already recorded
        log.warning("could not record the run summary: %s", exc)


def last_run(writer_or_manifest: Any, command: str = "extract") -> dict | None:
    manifest = getattr(writer_or_manifest, "manifest", writer_or_manifest)
    for run in reversed(manifest.runs):
        if run.get("command") == command:
            return run
    return None


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a worker group: a walake error before the rest."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
        else:
            leaves.append(item)
    known = [e for e in leaves if isinstance(e, IngestError)]
    return (known or leaves)[0]


def _is_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))


__all__ = [
    "ExtractOptions", "ExtractSummary", "IngestError", "list_chats", "pull_once",
    "run_extract", "started_sources",
]
