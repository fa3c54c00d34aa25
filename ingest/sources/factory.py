"""Build sources from the configuration: which server to start and how to read it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.config import Config
from ingest.errors import ConfigInvalid
from ingest.sources.bridge import BridgeSource, BridgeStore
from ingest.sources.mcp import CallPolicy, McpSource
from ingest.sources.mcp_client import ServerCommand
from ingest.sources.profiles import resolve_profile


def local_zone_name() -> str:
    """This machine's zone name: $TZ, else /etc/localtime's target, else UTC."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "zoneinfo/"
        if marker in target:
            return target.split(marker, 1)[1]
    except OSError:
        pass
    return "UTC"


def resolve_zone(name: str | None) -> ZoneInfo:
    chosen = name or local_zone_name()
    try:
        return ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigInvalid([
            f"source.timezone = {chosen!r}: not a known time zone; use an IANA name "
            "such as 'Europe/London' or 'America/Sao_Paulo'"
        ]) from None


def demo_server_command(store: Path, profile: str = "lharries") -> ServerCommand:
    """The embedded demo server serving `store` (any file with the bridge's schema)."""
    faults = os.environ.get("WALAKE_DEMO_FAULTS")  # fault injection for tests
    return ServerCommand(
        sys.executable,
        ("-m", "ingest.demo.server", "--store", str(store.resolve()), "--profile", profile),
        {"WALAKE_DEMO_FAULTS": faults} if faults else {},
    )


def server_command(config: Config, store: Path | None = None) -> ServerCommand:
    """The configured server command; `store` means the embedded demo server."""
    if store is not None:
        return demo_server_command(store, config.source.profile)
    settings = config.source
    if not settings.command:
        raise ConfigInvalid([
            "source.command is not set: say how to start your WhatsApp MCP server, "
            "e.g. command = \"uv\" and args = [\"--directory\", "
            "\"/path/to/whatsapp-mcp/whatsapp-mcp-server\", \"run\", \"main.py\"] in "
            "walake.toml, or pass --server-command; or use --store PATH to pull a "
            "bridge store through the built-in server"
        ])
    parts = shlex.split(settings.command) if not settings.args else [settings.command]
    return ServerCommand(
        parts[0], tuple(parts[1:]) + tuple(settings.args), dict(settings.env), settings.cwd
    )


def make_mcp_sources(
    config: Config,
    count: int,
    store: Path | None = None,
    errlog: IO[str] | None = None,
    delays: bool = True,
) -> list[McpSource]:
    """`count` sources, each of which will start its own server process."""
    profile = resolve_profile(config.source)
    command = server_command(config, store)
    policy = CallPolicy(
        timeout_seconds=config.performance.connection_timeout_seconds,
        retry_attempts=config.extraction.retry_attempts,
        call_delay_seconds=config.extraction.message_delay_seconds if delays else 0.0,
    )
    tz = resolve_zone(config.source.timezone)
    return [McpSource(command, profile, tz, policy, errlog) for _ in range(count)]


def bridge_store_path(config: Config, store: Path | None) -> Path:
    """The store to read: --store, else source.store from the config."""
    if store is not None:
        return store
    if config.source.store:
        return Path(config.source.store).expanduser()
    raise ConfigInvalid([
        "source.store is not set: say where the bridge's messages.db is, e.g. "
        "store = \"~/whatsapp-mcp/whatsapp-bridge/store/messages.db\" in the [source] "
        "section of walake.toml, or pass --store PATH"
    ])


def make_bridge_store(config: Config, store: Path | None = None) -> BridgeStore:
    """A read-only handle on the bridge store, for the fast whole-pull path."""
    path = bridge_store_path(config, store)
    return BridgeStore(path, config.source.busy_timeout_seconds)


def make_bridge_source(config: Config, store: Path | None = None) -> BridgeSource:
    """The store behind the paged source interface (run_extract, the monitor)."""
    path = bridge_store_path(config, store)
    return BridgeSource(
        path, resolve_zone(config.source.timezone), config.source.page_size or 5000,
        config.source.busy_timeout_seconds,
    )
