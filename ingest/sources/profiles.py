"""Server profiles: how to talk to a kind of WhatsApp MCP server. Data, not code.

A profile names the tools, the argument names, fixed arguments, page sizes, the
decoder of the output and how time bounds are written. The config's [source]
section may override the launch command, the tool names, the page size and whether
short pages are confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ingest.config import SourceSettings
from ingest.errors import ConfigInvalid


@dataclass(frozen=True)
class Profile:
    name: str
    list_chats_tool: str
    list_chats_args: dict[str, Any]
    chat_page_size: int | None  # None: one call returns every chat
    list_messages_tool: str
    message_fixed_args: dict[str, Any]
    chat_arg: str = "chat_jid"
    after_arg: str = "after"
    before_arg: str = "before"
    limit_arg: str = "limit"
    page_arg: str = "page"
    page_size: int = 5000
    max_page_size: int | None = None
    decoder: Literal["text", "json"] = "text"
    bounds: Literal["naive", "aware"] = "naive"
    # One more call per walk that ends on a short page, for answers that can be cut
    # without showing it (ingest/pull.py `_end_holds`)
    confirm_short_pages: bool = False
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    # lharries/whatsapp-mcp: text output, local naive times compared as text,
    # no page cap; include_context must be off (it duplicates rows). Each answer
    # is built whole from one query, and a record cut in the middle shows (it has
    # no line end), so short pages are not confirmed by default.
    "lharries": Profile(
        name="lharries",
        list_chats_tool="list_chats",
        list_chats_args={"limit": -1, "page": 0, "sort_by": "last_active"},
        chat_page_size=None,
        list_messages_tool="list_messages",
        message_fixed_args={"include_context": False},
        page_size=5000,
        decoder="text",
        bounds="naive",
    ),
    # verygoodplugins/whatsapp-mcp: JSON objects with ids, capped pages,
    # bounds compared as instants. A structured list cut between two objects
    # does not show it, so a short page is confirmed.
    "json": Profile(
        name="json",
        list_chats_tool="list_chats",
        list_chats_args={"sort_by": "last_active"},
        chat_page_size=200,
        list_messages_tool="list_messages",
        message_fixed_args={"include_context": False, "sort_by": "newest"},
        page_size=500,
        max_page_size=500,
        decoder="json",
        bounds="aware",
        confirm_short_pages=True,
    ),
}


def resolve_profile(settings: SourceSettings) -> Profile:
    """The profile named in settings with the settings' overrides applied."""
    if settings.profile not in PROFILES:
        raise ConfigInvalid([
            f"source.profile = {settings.profile!r}: choose one of {', '.join(PROFILES)}"
        ])
    profile = PROFILES[settings.profile]
    changes: dict[str, Any] = {}
    if settings.list_chats_tool:
        changes["list_chats_tool"] = settings.list_chats_tool
    if settings.list_messages_tool:
        changes["list_messages_tool"] = settings.list_messages_tool
    if settings.page_size:
        cap = profile.max_page_size
        changes["page_size"] = min(settings.page_size, cap) if cap else settings.page_size
    if settings.confirm_short_pages is not None:
        changes["confirm_short_pages"] = settings.confirm_short_pages
    return replace(profile, **changes)
