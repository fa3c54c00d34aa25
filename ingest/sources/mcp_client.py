"""One MCP server process over stdio, with timeouts and error classification.

The SDK's two attribute styles are both read (mcp 2.x `is_error`, 1.x `isError`), so
the client works whatever SDK generation produced the objects.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ingest.errors import (
    ServerTooNew,
    SourceTimeout,
    SourceUnavailable,
    ToolFailed,
)

log = logging.getLogger(__name__)


class StrayLineFilter(logging.Filter):
    """The SDK logs a server's stray stdout line with a traceback at ERROR, and the
    traceback quotes the line, which may hold message text. Below DEBUG it becomes a
    one-line warning without the line; the call goes on (the line is skipped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        if str(record.msg).startswith("Failed to parse JSONRPC message"):
            record.msg = ("The MCP server wrote a line on stdout that is not JSON-RPC; "
                          "it was skipped (run with -v to see it)")
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("mcp.client.stdio").addFilter(StrayLineFilter())


@dataclass(frozen=True)
class ServerCommand:
    """How to start the server: a program and its arguments, never a shell line."""

    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def describe(self) -> str:
        return " ".join([self.command, *self.args])


@dataclass(frozen=True)
class ToolResult:
    texts: list[str]
    structured: Any


def attr(obj: Any, snake: str, camel: str) -> Any:
    """Read an SDK field under its 2.x (snake_case) or 1.x (camelCase) name."""
    if hasattr(obj, snake):
        return getattr(obj, snake)
    return getattr(obj, camel, None)


def result_texts(result: Any) -> list[str]:
    blocks = attr(result, "content", "content") or []
    return [b.text for b in blocks if getattr(b, "type", "text") == "text"]


def is_validation_error(text: str) -> bool:
    return "validation error" in text and "Output" in text


def classify_error(tool: str, texts: list[str]) -> Exception:
    detail = "\n".join(texts) or "no detail"
    if is_validation_error(detail):
        return ServerTooNew(tool, detail)
    return ToolFailed(tool, detail)


class McpConnection:
    """A started server and its client session; `call` raises typed errors.

    The SDK ties a server's transport to the task that opened it, so one owner task
    opens, restarts and closes the server; calls may come from any task.
    """

    def __init__(
        self,
        command: ServerCommand,
        timeout_seconds: float,
        errlog: IO[str] | None = None,
    ) -> None:
        self.command = command
        self.timeout = timeout_seconds
        self.errlog = errlog
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._owner: asyncio.Task | None = None
        self._requests: asyncio.Queue = asyncio.Queue()
        self.generation = 0
        self.server_info: Any = None
        # The SDK loads with the first connection, not with every walake command,
        # and before a run starts (not inside its first call, which is timed)
        importlib.import_module("mcp.client.stdio")

    async def start(self) -> None:
        """Start the server under its owner task; raises if it cannot start."""
        ready = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(ready))
        await ready

    async def restart(self, generation: int) -> None:
        """Restart the server, unless another caller already did since `generation`."""
        if self._owner is None or generation != self.generation:
            return
        done = asyncio.get_running_loop().create_future()
        await self._requests.put((generation, done))
        await done

    async def close(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None and not owner.done():
            await self._requests.put(None)
            await asyncio.shield(owner)

    async def _own(self, ready: asyncio.Future) -> None:
        try:
            await self._open()
        except BaseException as exc:
            _settle(ready, exc)
            return
        _settle(ready, None)
        try:
            while (request := await self._requests.get()) is not None:
                generation, done = request
                if generation != self.generation:
                    _settle(done, None)  # another caller's restart already happened
                    continue
                await self._shut()
                try:
                    await self._open()
                    _settle(done, None)
                except BaseException as exc:  # the caller decides whether to go on
                    _settle(done, exc)
        finally:
            await self._shut()

    async def _open(self) -> None:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(
            command=self.command.command,
            args=list(self.command.args),
            env=self.command.env or None,
            cwd=self.command.cwd,
            encoding_error_handler="replace",
        )
        stack = AsyncExitStack()
        try:
            transport = (
                stdio_client(params, errlog=self.errlog)
                if self.errlog is not None
                else stdio_client(params)
            )
            # "legacy" is the initialize handshake every server speaks; the SDK's
            # "auto" first sends server/discover, which mcp 1.6 servers die on.
            client = Client(transport, read_timeout_seconds=self.timeout, mode="legacy")
            self._client = await stack.enter_async_context(client)
        except Exception as exc:
            await _close_quietly(stack)
            raise SourceUnavailable(
                f"Could not start the MCP server '{self.command.describe()}': "
                f"{_reason(exc)}.{self._stderr_tail()} Check the command in the "
                "[source] section of your config and run 'walake diagnostics'."
            ) from exc
        self._stack = stack
        self.generation += 1
        self.server_info = attr(self._client, "server_info", "serverInfo")

    def _stderr_tail(self) -> str:
        """The last line the server wrote to its stderr log, if we keep one."""
        name = getattr(self.errlog, "name", None)
        if not isinstance(name, str):
            return ""
        try:
            self.errlog.flush()
            lines = Path(name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        return f" The server's last words: {last[:300]!r} (full log: {name})." if last else ""

    async def _shut(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await _close_quietly(stack)

    async def list_tools(self) -> list[Any]:
        result = await self._guard("tools/list", self._client.list_tools())
        return list(result.tools)

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call a tool; ServerTooNew and ToolFailed are final, the rest retryable."""
        if self._client is None:
            raise SourceUnavailable("The MCP server is not running.")
        result = await self._guard(tool, self._client.call_tool(tool, arguments))
        texts = result_texts(result)
        if attr(result, "is_error", "isError"):
            raise classify_error(tool, texts)
        structured = attr(result, "structured_content", "structuredContent")
        return ToolResult(texts, structured)

    async def _guard(self, what: str, pending: Any) -> Any:
        from mcp.shared.exceptions import MCPError

        try:
            return await pending
        except MCPError as exc:
            if "timed out" in str(exc):
                raise SourceTimeout(
                    f"The MCP server did not answer '{what}' within {self.timeout:g} s. "
                    "Raise performance.connection_timeout_seconds if it is just slow."
                ) from exc
            raise SourceUnavailable(f"The MCP server failed on '{what}': {exc}") from exc
        except (OSError, EOFError, RuntimeError) as exc:
            raise SourceUnavailable(
                f"Lost the MCP server during '{what}': {_reason(exc)}"
            ) from exc
        except BaseException as exc:  # anyio stream closures come as several types
            if _is_closed_stream(exc):
                raise SourceUnavailable(
                    f"The MCP server exited during '{what}'."
                ) from exc
            raise


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    """Resolve a future unless its waiter has gone (cancelled) already."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _is_closed_stream(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in {"ClosedResourceError", "BrokenResourceError", "EndOfStream"} or (
        isinstance(exc, BaseExceptionGroup)
        and any(_is_closed_stream(e) for e in exc.exceptions)
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _reason(exc.exceptions[0])
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close_quietly(stack: AsyncExitStack) -> None:
    try:
        await stack.aclose()
    except BaseException as exc:  # a dead server may fail its own shutdown
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        log.debug("closing the MCP server failed: %s", _reason(exc))


def open_errlog(lake: Path) -> IO[str]:
    """The server's stderr goes to a private log in the lake, not the terminal."""
    from ingest.lake.files import ensure_private_dir

    folder = ensure_private_dir(lake / "logs")
    path = folder / "server-stderr.log"
    handle = open(path, "a", encoding="utf-8", opener=_private)
    return handle


def _private(path: str, flags: int) -> int:
    import os

    return os.open(path, flags, 0o600)
