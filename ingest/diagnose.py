"""Health checks behind `walake diagnostics`; each says what to do when it fails."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ingest.config import Config
from ingest.errors import IngestError
from ingest.lake.files import ensure_private_dir
from ingest.lake.manifest import Manifest
from ingest.sources.factory import make_bridge_store, make_mcp_sources

MIN_FREE_BYTES = 200 * 1024 * 1024


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    remedy: str = ""


async def run_checks(config: Config, lake: Path, store: Path | None) -> list[Check]:
    if config.source.kind == "bridge":
        checks = check_bridge(config, store)
    else:
        checks = await check_server(config, store)
    checks.extend(check_lake(lake))
    return checks


def check_bridge(config: Config, store: Path | None) -> list[Check]:
    """The bridge store: found, readable, with chats and messages; one timed read."""
    started = time.monotonic()
    try:
        bridge = make_bridge_store(config, store)
        try:
            chats = bridge.read_chats()
        finally:
            bridge.close()
    except IngestError as exc:
        return [Check("bridge store", False, str(exc),
                      "fix source.store in walake.toml, or pass --store PATH")]
    spent = time.monotonic() - started
    return [
        Check("bridge store", True, f"{bridge.path} (read-only)"),
        Check("one small read", True,
              f"{len(chats):,} chats with messages, listed in {spent * 1000:.0f} ms"),
    ]


async def check_server(config: Config, store: Path | None) -> list[Check]:
    """Start the server, list its tools, time one small call."""
    source = make_mcp_sources(config, 1, store, delays=False)[0]
    checks: list[Check] = []
    started = time.monotonic()
    try:
        await source.start()
    except IngestError as exc:
        return [Check("server starts", False, str(exc),
                      "fix source.command / args in walake.toml")]
    try:
        spent = time.monotonic() - started
        checks.append(Check("server starts", True,
                            f"{source.command.describe()} ({spent:.2f} s)"))
        tools = {t.name: t for t in await source.connection.list_tools()}
        checks.extend(check_tools(source.profile, tools))
        if all(c.ok for c in checks):
            checks.append(await check_call(source))
    except IngestError as exc:
        checks.append(Check("server answers", False, str(exc), _remedy(exc)))
    finally:
        await source.close()
    return checks


def check_tools(profile, tools: dict) -> list[Check]:  # noqa: ANN001
    checks = []
    wanted = {
        profile.list_chats_tool: [],
        profile.list_messages_tool: [profile.chat_arg, profile.limit_arg,
                                     profile.page_arg, profile.after_arg,
                                     profile.before_arg],
    }
    for name, args in wanted.items():
        tool = tools.get(name)
        if tool is None:
            checks.append(Check(f"tool {name}", False,
                                f"missing; the server has {', '.join(sorted(tools))}",
                                "choose the matching --profile or set the tool names "
                                "in [source]"))
            continue
        schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", {})
        present = set((schema or {}).get("properties", {}))
        missing = [a for a in args if a not in present]
        checks.append(Check(
            f"tool {name}", not missing,
            "arguments ok" if not missing else f"lacks arguments {', '.join(missing)}",
            "" if not missing else "choose the matching --profile",
        ))
    return checks


async def check_call(source) -> Check:  # noqa: ANN001
    started = time.monotonic()
    chats = await source.fetch_chats()
    list_seconds = time.monotonic() - started
    if not chats:
        return Check("list chats", True, f"0 chats ({list_seconds:.2f} s)")
    started = time.monotonic()
    page = await source.fetch_page(chats[0], None, None, 1)
    call_ms = (time.monotonic() - started) * 1000
    return Check("one small call", True,
                 f"{len(chats)} chats listed in {list_seconds:.2f} s; one message "
                 f"page in {call_ms:.0f} ms ({len(page.rows)} row)")


def check_lake(lake: Path) -> list[Check]:
    checks = []
    try:
        ensure_private_dir(lake)
        probe = lake / ".diagnostics-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
        checks.append(Check("lake writable", True, str(lake)))
    except OSError as exc:
        return [Check("lake writable", False, f"{lake}: {exc.strerror}",
                      "choose another --lake or fix the folder's permissions")]
    free = psutil.disk_usage(str(lake)).free
    checks.append(Check("free disk", free >= MIN_FREE_BYTES,
                        f"{free / 2**30:.1f} GiB free where the lake lives",
                        "free some space or move the lake (--lake)"))
    mode = os.stat(lake).st_mode & 0o777
    checks.append(Check("lake private", mode & 0o077 == 0, f"mode {mode:o}",
                        f"chmod 700 {lake}"))
    checks.append(check_manifest(lake))
    return checks


def check_manifest(lake: Path) -> Check:
    """The manifest reads (or the lake is new); a lost or damaged one fails here."""
    try:
        manifest = Manifest.load(lake)
    except IngestError as exc:
        return Check("lake manifest", False, str(exc).split(". ")[0],
                     str(exc).split(". ", 1)[-1])
    batches = len(manifest.batches)
    detail = f"{batches} batches recorded" if batches else "a new lake (no batches yet)"
    return Check("lake manifest", True, detail)


def _remedy(exc: Exception) -> str:
    return "see the message above; then run 'walake diagnostics' again"
