"""Build sources from the configuration: which server to start and how to read it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.config import Config
from ingest.errors import ConfigInvalid, IngestError
from ingest.sources.bridge import BridgeSource, BridgeStore, check_bridge_store
from ingest.sources.mcp import CallPolicy, McpSource
from ingest.sources.mcp_client import ServerCommand
from ingest.sources.profiles import resolve_profile

if TYPE_CHECKING:
    from ingest.lake.manifest import Manifest


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


class ZoneMismatch(IngestError):
    """The zone asked for is not the one a source's rows in the lake were read in."""

    def __init__(self, source_key: str, recorded: str, asked: str) -> None:
        super().__init__(
            f"This lake's {source_key} messages were read with local times in "
            f"{recorded}, but this run asks for {asked} (--timezone or "
            f"source.timezone). Mixing zones would shift the new messages by the "
            f"difference and the same message would no longer be recognised as one. "
            f"To go on in the recorded zone, pass --timezone {recorded} (or remove "
            f"source.timezone from walake.toml). To move the lake to {asked}, first "
            f"run `walake rebuild --timezone {asked}`, then run this again. Nothing "
            "was changed."
        )


def lake_zone(manifest: Manifest | None, source_key: str, asked: str | None) -> ZoneInfo:
    """The zone to read `source_key` in, recorded in `manifest` (saved with it).

    `asked` (--timezone, else source.timezone) wins on a source the lake has no rows
    from; otherwise it must be the recorded zone. Nothing asked: the recorded zone,
    else this machine's.
    """
    recorded = manifest.zone(source_key) if manifest is not None else None
    if asked and recorded and manifest is not None and manifest.cursors(source_key):
        zone = resolve_zone(asked)
        if zone.key != recorded:
            raise ZoneMismatch(source_key, recorded, zone.key)
    zone = resolve_zone(asked or recorded)
    if manifest is not None:
        manifest.set_zone(source_key, zone.key)
    return zone


def demo_server_command(store: Path, profile: str = "lharries") -> ServerCommand:
    """The embedded demo server serving `store` (any file with the bridge's schema);
    fails with `StoreUnreadable` before anything starts if `store` is not one."""
    check_bridge_store(store)
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
            "source.command is not set: say how to start your WhatsApp MCP server "
            "in the [source] section of walake.toml, e.g. command = \"uv\" and "
            "args = [\"--directory\", \"/path/to/whatsapp-mcp/whatsapp-mcp-server\", "
            "\"run\", \"main.py\"] (optional: env, cwd, profile); or pass --store "
            "PATH to serve a bridge store (messages.db) through the built-in server, "
            "or --source bridge --store PATH to read it directly"
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
    manifest: Manifest | None = None,
) -> list[McpSource]:
    """`count` sources, each of which will start its own server process.

    With the lake's `manifest`, the zone is the one recorded for this server kind
    (see `lake_zone`) and is recorded there.
    """
    profile = resolve_profile(config.source)
    command = server_command(config, store)
    policy = CallPolicy(
        timeout_seconds=config.performance.connection_timeout_seconds,
        retry_attempts=config.extraction.retry_attempts,
        call_delay_seconds=config.extraction.message_delay_seconds if delays else 0.0,
    )
    tz = lake_zone(manifest, f"mcp:{profile.name}", config.source.timezone)
    return [McpSource(command, profile, tz, policy, errlog) for _ in range(count)]


def check_source(config: Config, store: Path | None) -> None:
    """Refuse what can be refused before a lake folder is touched: a bridge store
    that is missing or not one, an MCP server that is not configured."""
    if config.source.kind == "bridge":
        bridge_store_path(config, store)
    else:
        server_command(config, store)


def bridge_store_path(config: Config, store: Path | None) -> Path:
    """The store to read: --store, else source.store from the config; it must be a
    bridge store (SQLite with chats and messages tables)."""
    if store is not None:
        check_bridge_store(store)
        return store
    if config.source.store:
        path = Path(config.source.store).expanduser()
        check_bridge_store(path)
        return path
    raise ConfigInvalid([
        "source.store is not set: say where the bridge's messages.db is, e.g. "
        "store = \"~/whatsapp-mcp/whatsapp-bridge/store/messages.db\" in the [source] "
        "section of walake.toml, or pass --store PATH"
    ])


def make_bridge_store(config: Config, store: Path | None = None) -> BridgeStore:
    """A read-only handle on the bridge store, for the fast whole-pull path."""
    path = bridge_store_path(config, store)
    return BridgeStore(path, config.source.busy_timeout_seconds)


def make_bridge_source(
    config: Config, store: Path | None = None, manifest: Manifest | None = None
) -> BridgeSource:
    """The store behind the paged source interface (run_extract, the monitor)."""
    path = bridge_store_path(config, store)
    tz = lake_zone(manifest, BridgeSource.key, config.source.timezone)
    return BridgeSource(
        path, tz, config.source.page_size or 5000,
        config.source.busy_timeout_seconds,
    )
