"""`walake monitor` (live alerts) and `walake notebook` (the marimo notebooks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ingest.cli.options import (
    INTERVAL_SECONDS,
    MONITOR_MINUTES,
    THRESHOLD,
    duration,
    json_option,
    lake_option,
    plural,
    resolve_lake,
)
from ingest.config import Config, load_config, with_overrides
from ingest.errors import IngestError
from ingest.terminal import visible

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK_NAMES = ("monitor", "explore")


def monitor_options(function):  # noqa: ANN001, ANN201 - a click decorator
    """The monitor's own options, then those it shares with extract."""
    decorators = [
        lake_option,
        click.option("--config", "config_path", type=click.Path(
            dir_okay=False, path_type=Path),
            help="Config file (default ./walake.toml)."),
        click.option("--duration", type=MONITOR_MINUTES,
                     metavar="MIN", help="Stop after this many minutes "
                     "(default: run until Ctrl+C)."),
        click.option("--interval", type=INTERVAL_SECONDS,
                     metavar="SEC", help="Seconds between ticks (default: the "
                     "config's monitoring.check_interval_seconds, 30)."),
        click.option("--threshold", type=THRESHOLD, metavar="N",
                     help="Alert at this score or above (default: the config's "
                     "monitoring.opportunity_threshold, 2)."),
        click.option("--notify-command", metavar="CMD",
                     help="Shell command run for each alert, the alert as JSON "
                     "on stdin."),
        click.option("--source", type=click.Choice(["mcp", "bridge"]),
                     help="Read an MCP server (default), or the bridge's store."),
        click.option("--store", type=click.Path(dir_okay=False, exists=True,
                     path_type=Path), help="The bridge store (messages.db): read "
                     "directly with --source bridge, else served through the "
                     "built-in MCP server."),
        click.option("--max-chats", type=int,
                     help="Chats to watch, most recent first."),
        click.option("--max-messages", type=int, help="History to pull for a chat "
                     "the lake has not seen yet (it does not raise alerts)."),
        click.option("--concurrency", type=click.IntRange(1, 16),
                     help="Server processes."),
        click.option("--profile", type=click.Choice(["lharries", "json"]),
                     help="Kind of MCP server (default lharries)."),
        click.option("--timezone", help="Zone of the bridge's timestamps (IANA name)."),
        click.option("--include-status", is_flag=True,
                     help="Also watch the status@broadcast pseudo-chat."),
        json_option("One JSON object per line: alerts, ticks, the summary."),
        click.option("-q", "--quiet", is_flag=True,
                     help="Only alerts and the summary."),
        click.option("-v", "--verbose", is_flag=True, help="Debug logs on stderr."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def monitor_config(config: Config, flags: dict[str, Any]) -> Config:
    """The config with the monitor's flags applied (flags win over the file)."""
    from ingest.cli.extract import effective_config

    config = effective_config(config, flags, None)
    return with_overrides(
        config, "monitoring",
        check_interval_seconds=flags.get("interval"),
        opportunity_threshold=flags.get("threshold"),
    )


def build_options(config: Config, flags: dict[str, Any], local: bool):  # noqa: ANN201
    from ingest.extract import ExtractOptions
    from ingest.monitor import MonitorOptions

    ex, mon = config.extraction, config.monitoring
    extract = ExtractOptions(
        max_chats=ex.max_chats,
        max_messages=ex.max_messages_per_chat,
        batch_size=ex.batch_size,
        memory_limit_mb=config.performance.memory_limit_mb,
        chat_delay_seconds=0.0 if local else ex.chat_delay_seconds,
        concurrency=config.performance.max_concurrent_requests,
        include_status=flags.get("include_status") or ex.include_status_broadcast,
    )
    duration = flags.get("duration")
    return MonitorOptions(
        interval_seconds=mon.check_interval_seconds,
        threshold=mon.opportunity_threshold,
        duration_seconds=duration * 60 if duration else None,
        max_history=mon.max_history_size,
        notify_command=flags.get("notify_command"),
        extract=extract,
    )


def make_sources(  # noqa: ANN201
    config: Config, store: Path | None, stack: ExitStack, lake: Path, manifest=None  # noqa: ANN001
):
    """The monitor's sources: a paged bridge reader, or MCP server processes.

    With the lake's `manifest`, times are read in the zone recorded for the source.
    """
    from ingest.sources.factory import make_bridge_source, make_mcp_sources
    from ingest.sources.mcp_client import open_errlog

    if config.source.kind == "bridge":
        return [make_bridge_source(config, store, manifest)]
    errlog = stack.enter_context(open_errlog(lake))
    return make_mcp_sources(config, config.performance.max_concurrent_requests,
                            store, errlog, delays=store is None, manifest=manifest)


class Display:
    """Prints the monitor's events: alerts on stdout, tick status on stderr."""

    def __init__(self, as_json: bool, quiet: bool) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def __call__(self, kind: str, info: Any) -> None:
        if self.as_json:
            self._json(kind, info)
        elif kind == "alert":
            self._alert(info)
        elif kind == "error":
            self.err.print(f"[yellow]monitor: {shown(info)}[/]")
        elif kind == "tick" and not self.quiet and (info.messages or info.alerts):
            self.err.print(
                f"[dim]tick {info.number}: {info.messages:,} new in "
                f"{plural(info.chats_pulled, 'chat')}, {plural(info.alerts, 'alert')} "
                f"({info.seconds:.1f} s)[/]"
            )

    def _json(self, kind: str, info: Any) -> None:
        if kind == "alert":
            payload = info.to_json()
        elif kind == "tick":
            payload = {k: v for k, v in vars(info).items()}
        else:
            payload = {"detail": info}
        click.echo(json.dumps({"event": kind, **payload}), nl=True)
        sys.stdout.flush()

    def _alert(self, alert: Any) -> None:
        who = alert.sender_name or alert.sender_id or "?"
        where = alert.chat_name or alert.chat_id
        categories = ", ".join(alert.categories) or "-"
        self.out.print(
            f"[bold red]ALERT[/] {alert.sent_at_local:%Y-%m-%d %H:%M:%S}  "
            f"[bold]{shown(where)}[/] · {shown(who)} · score {alert.score:g} · "
            f"{shown(categories)}\n      {shown(_excerpt(alert.excerpt))}"
        )

    def summary(self, stats: Any, lake: Path) -> None:
        if self.as_json:
            click.echo(json.dumps({"event": "summary", "lake": str(lake),
                                   **stats.to_json()}))
            return
        click.echo(summary_line(stats, lake))
        for error in stats.recent_errors[-3:]:
            click.echo(f"  error: {visible(error)}", err=True)


def shown(text: str) -> str:
    """Lake text for rich: control characters visible, never read as markup."""
    return escape(visible(text))


def _excerpt(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_line(stats: Any, lake: Path) -> str:
    failed = f" ({stats.ticks_failed} failed)" if stats.ticks_failed else ""
    lag = (f", lag {duration(stats.lag_seconds_max)} max"
           if stats.lag_seconds_max is not None else "")
    return (
        f"Monitor {stats.status}: {plural(stats.ticks, 'tick')}{failed}, "
        f"{plural(stats.messages, 'new message')}, {plural(stats.alerts, 'alert')}, "
        f"{plural(stats.errors, 'error')}; tick "
        f"{stats.tick_seconds_mean:.2f} s mean, {stats.tick_seconds_max:.2f} s max"
        f"{lag} -> {lake}"
    )


async def _run(writer, sources, options, display):  # noqa: ANN001, ANN202
    """The session, stopped cleanly by the first Ctrl+C or SIGTERM."""
    from ingest.monitor import run_monitor

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        stop.set()
        loop.remove_signal_handler(signum)  # a second Ctrl+C interrupts at once

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    return await run_monitor(writer, sources, options, display, stop)


@click.command()
@monitor_options
def monitor(lake: Path | None, config_path: Path | None, store: Path | None,
            as_json: bool, quiet: bool, verbose: bool, **flags: Any) -> None:
    """Watch for new messages and alert on the hot ones as they arrive.

    Each tick pulls only what is new (the same cursors as extract), scores it
    with the views' SQL and prints an alert for each message at or above the
    threshold; alerts also land in the lake's `alerts` table. Runs until Ctrl+C
    or --duration; statistics are printed at the end and kept in the lake.

    \b
    Examples:
        walake monitor --interval 30 --threshold 3
        walake monitor --source bridge --store whatsapp-bridge/store/messages.db \\
            --notify-command 'notify-send "walake" "$(jq -r .excerpt)"'
    """
    from ingest.cli import setup_logging
    from ingest.lake.writer import LakeWriter
    from ingest.sources.factory import check_source
    from ingest.views import keyword_files, read_keywords

    config, _ = load_config(config_path)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    setup_logging(verbose, config.resources.log_level, lake)
    config = monitor_config(config, flags)
    local = store is not None or config.source.kind == "bridge"
    options = build_options(config, flags, local)
    display = Display(as_json, quiet)
    read_keywords(keyword_files(lake))  # a bad keyword file stops it before any tick
    check_source(config, store)  # before the lake folder is touched
    with ExitStack() as stack:
        writer = stack.enter_context(LakeWriter(lake))
        sources = make_sources(config, store, stack, lake, writer.manifest)
        stats = asyncio.run(_run(writer, sources, options, display))
    display.summary(stats, lake)


class NotebookMissing(IngestError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"The notebook {path} is not there. The notebooks ship with the walake "
            "source tree: run this command from a checkout (pip install -e .), or "
            f"open the file with 'marimo run {path.name}'."
        )


@click.command()
@click.argument("name", type=click.Choice(NOTEBOOK_NAMES))
@lake_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file whose `lake` to use (default ./walake.toml).")
@click.option("--edit", is_flag=True, help="Open in the marimo editor, not as an app.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port (default: marimo picks a free one).")
@click.option("--headless", is_flag=True, help="Do not open a browser.")
def notebook(name: str, lake: Path | None, config_path: Path | None, edit: bool,
             host: str, port: int | None, headless: bool) -> None:
    """Open a notebook: `monitor` (live alerts, ingest health) or `explore`.

    \b
    Examples:
        walake notebook monitor
        walake notebook explore --lake ~/walake/lake --edit
    """
    config, _ = load_config(config_path)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    path = NOTEBOOKS / f"{name}.py"
    if not path.is_file():
        raise NotebookMissing(path)
    command = [sys.executable, "-m", "marimo", "edit" if edit else "run", str(path),
               "--host", host]
    if port:
        command += ["--port", str(port)]
    if headless:
        command.append("--headless")
    command += ["--", "--lake", str(lake.resolve())]
    env = {**os.environ, "WALAKE_LAKE": str(lake.resolve())}
    raise SystemExit(serve(command, env))


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # passed on to the server
STOP_GRACE_SECONDS = 5.0


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run the marimo server until it ends; walake's SIGTERM or SIGHUP stops it too.

    Ctrl+C reaches the server by itself (same process group). Either way the server
    is told to stop (SIGTERM) and killed if it has not STOP_GRACE_SECONDS later.
    Returns the exit code (128 + the signal's number when walake was signalled).
    """
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt  # out of the wait below

    process = subprocess.Popen(command, env=env)
    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = 0
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        stop_server(process)
    return 128 + received[0] if received else code


def stop_server(process: subprocess.Popen) -> None:
    """Wait a moment for the server to end, then kill it."""
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


commands = [monitor, notebook]
