"""Configuration: a pydantic-validated TOML file, presets, and CLI overrides.

Lookup order for the file: `--config PATH`, then `$WALAKE_CONFIG`, then
`./walake.toml`. A missing file means the `standard` preset. Flags override the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ingest.errors import ConfigInvalid

CONFIG_NAME = "walake.toml"
PresetName = Literal["light", "standard", "heavy", "enterprise"]


class Section(BaseModel):
    # allow_inf_nan: every number in walake.toml must be finite (inf, nan refused);
    # strict: a value of the wrong type is refused, not coerced (`true` is no count)
    model_config = ConfigDict(extra="forbid", validate_assignment=True,
                              allow_inf_nan=False, strict=True)


class Extraction(Section):
    max_chats: int = Field(50, ge=1, le=1_000_000)
    max_messages_per_chat: int = Field(200, ge=1, le=100_000_000)
    batch_size: int = Field(10, ge=1, le=10_000, description="chats per lake batch")
    chat_delay_seconds: float = Field(2.0, ge=0, le=3600)
    message_delay_seconds: float = Field(1.0, ge=0, le=3600)
    retry_attempts: int = Field(3, ge=0, le=100)
    include_status_broadcast: bool = False


class Monitoring(Section):
    check_interval_seconds: float = Field(30, gt=0, le=86_400)
    opportunity_threshold: float = Field(2, ge=0)
    max_history_size: int = Field(1000, ge=1, le=10_000_000)


class Performance(Section):
    max_concurrent_requests: int = Field(1, ge=1, le=16)
    connection_timeout_seconds: float = Field(30, gt=0, le=3600)
    memory_limit_mb: int = Field(100, ge=20, le=1_000_000)


class Resources(Section):
    cleanup_old_files_days: int = Field(30, ge=1, le=36_500)
    compress_old_data: bool = False
    auto_cleanup: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        """`info` as --log-level takes it."""
        return value.upper() if isinstance(value, str) else value


class SourceSettings(Section):
    """Where messages come from: an MCP server (a profile fills in what is not set
    here) or, with kind = "bridge", the bridge's SQLite store read directly."""

    kind: Literal["mcp", "bridge"] = "mcp"
    store: str | None = Field(
        None, description="the bridge's messages.db, for kind = \"bridge\""
    )
    busy_timeout_seconds: float = Field(
        30, gt=0, le=3600, description="how long to wait for a store the bridge locks"
    )
    profile: Literal["lharries", "json"] = "lharries"
    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    timezone: str | None = Field(
        None, description="zone of the bridge's local timestamps; default: this machine's"
    )
    list_chats_tool: str | None = None
    list_messages_tool: str | None = None
    page_size: int | None = Field(None, ge=1, le=1_000_000)
    confirm_short_pages: bool | None = Field(
        None, description="one more call per chat to confirm a short last page, for "
        "a server (or a proxy) that may cut its answers; default: the profile's"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        """An IANA zone name this machine knows (what extract will use)."""
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "not a known time zone; use an IANA name such as 'Europe/London' or "
                "'America/Sao_Paulo'"
            ) from None
        return value


class Config(Section):
    lake: str | None = None
    extraction: Extraction = Extraction()
    monitoring: Monitoring = Monitoring()
    performance: Performance = Performance()
    resources: Resources = Resources()
    source: SourceSettings = SourceSettings()


PRESETS: dict[str, dict[str, Any]] = {
    "light": dict(chats=20, messages=100, batch=5, chat_delay=3.0, call_delay=1.5,
                  interval=60, memory=50),
    "standard": dict(chats=50, messages=200, batch=10, chat_delay=2.0, call_delay=1.0,
                     interval=30, memory=100),
    "heavy": dict(chats=200, messages=1000, batch=20, chat_delay=1.0, call_delay=0.5,
                  interval=15, memory=500),
    "enterprise": dict(chats=500, messages=2000, batch=25, chat_delay=0.5,
                       call_delay=0.2, interval=10, memory=2048),
}


# The keys a preset sets, by section: key -> its name in PRESETS. Nothing else.
PRESET_KEYS: dict[str, dict[str, str]] = {
    "extraction": {"max_chats": "chats", "max_messages_per_chat": "messages",
                   "batch_size": "batch", "chat_delay_seconds": "chat_delay",
                   "message_delay_seconds": "call_delay"},
    "monitoring": {"check_interval_seconds": "interval"},
    "performance": {"memory_limit_mb": "memory"},
}


def preset_values(name: str) -> dict[str, dict[str, Any]]:
    """The settings a preset stands for, by section (only the keys it sets)."""
    if name not in PRESETS:
        raise ConfigInvalid([
            f"preset = {name!r}: not a preset; choose one of {', '.join(PRESETS)}"
        ])
    p = PRESETS[name]
    return {section: {key: p[short] for key, short in keys.items()}
            for section, keys in PRESET_KEYS.items()}


def preset(name: str) -> Config:
    """The configuration a preset stands for (the defaults for everything else)."""
    return Config.model_validate(preset_values(name))


def with_preset(text: str | None, name: str, path: Path | None = None) -> str:
    """The config file `text` with the preset's keys set and all else (other keys,
    comments, order) kept; no text: a new file with every setting. Validated."""
    import tomlkit

    if text is None:
        text = to_toml(preset(name))
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigInvalid([f"not valid TOML: {exc}"], path) from None
    for section, values in preset_values(name).items():
        if section not in document:
            document[section] = tomlkit.table()
        for key, value in values.items():
            document[section][key] = value
    result = tomlkit.dumps(document)
    parse_config(tomllib.loads(result), path)  # what we write must read back
    return result


def describe_errors(error: ValidationError, data: dict[str, Any]) -> list[str]:
    """One line per problem: the key, the value found, and what is allowed."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        value = item.get("input")
        found = "missing" if item["type"] == "missing" else f"{value!r}"
        if item["type"] == "extra_forbidden":
            lines.append(f"{key} = {found}: unknown key; remove it or check its spelling")
        elif item["type"] == "value_error" and "error" in item.get("ctx", {}):
            lines.append(f"{key} = {found}: {item['ctx']['error']}")
        else:
            lines.append(f"{key} = {found}: {item['msg']}")
    return lines


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigInvalid(describe_errors(exc, data), path) from None


def find_config(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.exists():
            raise ConfigInvalid([f"--config {explicit}: no such file"])
        return explicit
    env = os.environ.get("WALAKE_CONFIG")
    if env:
        return Path(env)
    local = Path(CONFIG_NAME)
    return local if local.exists() else None


def load_config(explicit: Path | None = None) -> tuple[Config, Path | None]:
    """The validated configuration and the file it came from (None: defaults)."""
    path = find_config(explicit)
    if path is None:
        return Config(), None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([f"cannot read the file: {exc}"], path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid([f"not valid TOML: {exc}"], path) from None
    return parse_config(data, path), path


def with_overrides(config: Config, section: str, **values: Any) -> Config:
    """A copy of `config` with the non-None `values` set in `section`, validated."""
    chosen = {k: v for k, v in values.items() if v is not None}
    if not chosen:
        return config
    data = config.model_dump()
    data[section].update(chosen)
    return parse_config(data)


def to_toml(config: Config) -> str:
    """The configuration as a TOML document (only plain values; no library needed)."""
    lines: list[str] = []
    data = config.model_dump()
    if data.get("lake"):
        lines.append(f"lake = {_toml_value(data['lake'])}\n")
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None or isinstance(value, dict):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        for key, value in values.items():
            if isinstance(value, dict) and value:
                lines.append(f"[{section}.{key}]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
