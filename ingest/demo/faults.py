"""Fault injection for the demo server, read from `WALAKE_DEMO_FAULTS`.

The value is a comma list of `knob=N`; calls are counted from 1 across all tools.
Everything is off when the variable is unset or empty.

- `exit_after_calls=N`: answer N calls, then exit (status 3) when call N+1 arrives,
  without answering it.
- `hang_on_call=N`: call N never answers; the process stays up and answers later
  calls.
- `error_on_call=N`: call N answers `isError` with
  `Error executing tool <name>: injected fault (error_on_call=N)`.
- `garbage_on_call=N`: call N answers one text block that is neither JSON nor the
  lharries line format.
- `truncate_on_call=N`: call N keeps only the first half of its text blocks (at
  least one), and the last kept block is cut in the middle of a line.
- `cut_at_record_on_call=N`: call N keeps the first half of its records whole: the
  first half of its blocks (at least one), the last kept block up to the line end
  before its middle. Nothing in the answer shows the cut.
- `noise_on_call=N`: before answering call N the server writes a stray non-JSON
  line on stdout, as upstream's `Database error: ...` prints do.
- `slow_ms=N`: every call waits N milliseconds before it runs.
- `validation_error=1`: data tools answer like an mcp>=1.10 server running the
  lharries code: `isError` with `Error executing tool list_chats: 3 validation
  errors for list_chatsOutput ...`; list_chats and search_contacts with no rows
  succeed with `structuredContent {"result": []}`; get_last_interaction is unaffected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields

from mcp.types import CallToolResult, TextContent

ENV_VAR = "WALAKE_DEMO_FAULTS"
GARBAGE = "}{\ufffd\ufffd <<garbage>> not JSON ~~ [no timestamp here ~~ \x1b[0m"
ITEM_CLASSES = {
    "list_chats": "Chat", "get_contact_chats": "Chat", "search_contacts": "Contact",
}
DICT_CLASSES = {
    "get_chat": "Chat", "get_direct_chat_by_contact": "Chat",
    "get_message_context": "MessageContext",
}
PYDANTIC_URL = "    For further information visit https://errors.pydantic.dev/2.11/v/"


class FaultSpecError(ValueError):
    """`WALAKE_DEMO_FAULTS` names an unknown knob or a non-integer value."""

    def __init__(self, spec: str, problem: str) -> None:
        self.spec = spec
        super().__init__(
            f"{ENV_VAR}={spec!r}: {problem}. Use a comma list such as "
            "'error_on_call=2,slow_ms=100' (see ingest/demo/faults.py)."
        )


@dataclass
class Faults:
    """Active knobs (0 = off) and the running call count."""

    exit_after_calls: int = 0
    hang_on_call: int = 0
    error_on_call: int = 0
    garbage_on_call: int = 0
    truncate_on_call: int = 0
    cut_at_record_on_call: int = 0
    noise_on_call: int = 0
    slow_ms: int = 0
    validation_error: int = 0
    calls: int = 0

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        knobs = {f.name for f in fields(cls)} - {"calls"}
        values: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in (spec or "").split(","))):
            key, _, raw = item.partition("=")
            if key not in knobs:
                raise FaultSpecError(spec or "", f"unknown knob {key!r}")
            try:
                values[key] = int(raw)
            except ValueError:
                raise FaultSpecError(spec or "", f"{key} needs an integer") from None
        return cls(**values)

    def next_call(self) -> int:
        self.calls += 1
        return self.calls


def text_result(blocks: list[str], structured: dict | None = None) -> CallToolResult:
    content = [TextContent(type="text", text=block) for block in blocks]
    return CallToolResult(content=content, structured_content=structured)


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def truncated(result: CallToolResult) -> CallToolResult:
    """Cut in the middle of a line, as a write cut short leaves it."""
    return _cut(result, _mid_line, drop_items=1)


def cut_at_record(result: CallToolResult) -> CallToolResult:
    """Cut at a line end: whole records, fewer of them."""
    return _cut(result, _at_line_end, drop_items=0)


def _cut(result: CallToolResult, cut: Callable[[str], str], drop_items: int):
    keep = max(1, len(result.content) // 2)
    blocks = [block.text for block in result.content[:keep]]
    if blocks:
        blocks[-1] = cut(blocks[-1])
    structured = result.structured_content
    if structured and isinstance(structured.get("result"), list):
        structured = {"result": structured["result"][: max(0, keep - drop_items)]}
    return text_result(blocks, structured)


def _mid_line(text: str) -> str:
    end = len(text) // 2
    while end > 1 and text[end - 1] == "\n":
        end -= 1
    return text[:end]


def _at_line_end(text: str) -> str:
    return text[: text.rfind("\n", 0, len(text) // 2) + 1]


def _short_repr(text: str) -> str:
    # pydantic shortens long input values in the middle the same way
    return text if len(text) <= 50 else f"{text[:24]}...{text[-24:]}"


def _as_repr(cls_name: str, block: str) -> str:
    try:
        values = json.loads(block)
    except ValueError:
        return repr(block)
    inner = ", ".join(f"{key}={value!r}" for key, value in values.items())
    return f"{cls_name}({inner})"


def validation_failure(tool: str, result: CallToolResult) -> CallToolResult:
    """What an mcp>=1.10 server makes of the lharries return values."""
    blocks = [block.text for block in result.content]
    prefix = f"Error executing tool {tool}: "
    if tool in ITEM_CLASSES:
        if not blocks:
            return text_result([], {"result": []})
        lines = [f"{len(blocks)} validation error{'s' * (len(blocks) > 1)} "
                 f"for {tool}Output"]
        for i, block in enumerate(blocks):
            shown = _short_repr(_as_repr(ITEM_CLASSES[tool], block))
            lines += [f"result.{i}", "  Input should be a valid dictionary "
                      f"[type=dict_type, input_value={shown}, "
                      f"input_type={ITEM_CLASSES[tool]}]", PYDANTIC_URL + "dict_type"]
        return error_result(prefix + "\n".join(lines))
    if tool == "list_messages":
        shown = _short_repr(repr(blocks[0] if blocks else ""))
        return error_result(
            f"{prefix}1 validation error for list_messagesOutput\nresult\n"
            f"  Input should be a valid list [type=list_type, input_value={shown}, "
            f"input_type=str]\n{PYDANTIC_URL}list_type"
        )
    if tool in DICT_CLASSES and blocks:
        cls_name = DICT_CLASSES[tool]
        shown = _short_repr(_as_repr(cls_name, blocks[0]))
        return error_result(
            f"{prefix}1 validation error for {tool}Output\n  Input should be a valid "
            f"dictionary [type=dict_type, input_value={shown}, input_type={cls_name}]"
            f"\n{PYDANTIC_URL}dict_type"
        )
    return result
