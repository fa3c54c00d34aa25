"""Typed errors. Each message names the value at fault and what to do about it.

Retryable errors are faults a later attempt may not meet (a timeout, a crashed
server); terminal ones need the user to change something first.
"""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """Base of every error walake reports to the user."""

    retryable = False


class RetryableError(IngestError):
    retryable = True


class ConfigInvalid(IngestError):
    """A configuration value is out of range or of the wrong type."""

    def __init__(self, problems: list[str], path: Path | None = None) -> None:
        self.problems = problems
        self.path = path
        where = f" in {path}" if path else ""
        super().__init__(f"Invalid configuration{where}:\n  " + "\n  ".join(problems))


class LakeLocked(IngestError):
    """Another walake process is writing to this lake."""

    def __init__(self, lake: Path, holder: str) -> None:
        self.lake = lake
        self.holder = holder
        super().__init__(
            f"The lake {lake} is being written by another walake process ({holder}). "
            "Wait for it to finish or stop it; only one writer may use a lake at a time."
        )


class ManifestVersionTooNew(IngestError):
    def __init__(self, path: Path, found: int, supported: int) -> None:
        super().__init__(
            f"{path} has manifest version {found}, but this walake reads up to "
            f"version {supported}. Upgrade walake (pip install -U walake)."
        )


class ManifestCorrupt(IngestError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"The lake manifest {path} cannot be read ({reason}). A copy of its last "
            f"save is kept as {path.name}.bak when it exists: restore it with "
            f"'cp {path}.bak {path}' and run the command again."
        )


class ManifestMissing(IngestError):
    """The lake holds batch files (or a manifest backup) but no manifest."""

    def __init__(self, path: Path, files: int, has_backup: bool) -> None:
        if has_backup:
            fix = (f"Restore the copy of its last save with 'cp {path}.bak {path}' "
                   "and run the command again.")
        else:
            fix = (f"Restore {path.name} from a backup (or copy the whole lake folder "
                   "again). If this folder never finished a walake run, remove its "
                   "raw/, messages/ and alerts/ folders to start afresh.")
        super().__init__(
            f"The lake manifest {path} is missing, but the lake holds {files} batch "
            "file(s). walake will not read or write this lake without it (a writer "
            f"would take the files for leftovers of a crash). {fix}"
        )


class LakeNotPrivate(IngestError):
    pass


class SourceUnavailable(RetryableError):
    """The MCP server could not be started or stopped answering."""


class SourceTimeout(RetryableError):
    pass


class ServerTooNew(IngestError):
    """A lharries server running an mcp release whose output validation rejects it."""

    def __init__(self, tool: str, detail: str) -> None:
        self.tool = tool
        super().__init__(
            f"The MCP server failed on '{tool}' with an output validation error "
            f"({detail.splitlines()[0][:120]}). It runs an mcp release too new for "
            "lharries/whatsapp-mcp (structured output arrived in mcp 1.10). Fix: pin "
            "the server's mcp to 1.6.0 (use 'uv run', which honours its uv.lock, or "
            "'pip install mcp==1.6.0' in its environment), or use the maintained fork "
            "verygoodplugins/whatsapp-mcp with '--profile json'."
        )


class ToolFailed(IngestError):
    """The server answered a call with an error that a retry will not fix."""

    def __init__(self, tool: str, detail: str) -> None:
        self.tool = tool
        self.detail = detail
        super().__init__(f"The MCP server's tool '{tool}' failed: {detail[:300]}")


class ToolMissing(IngestError):
    def __init__(self, tool: str, available: list[str]) -> None:
        super().__init__(
            f"The MCP server has no tool named '{tool}' (it has: "
            f"{', '.join(sorted(available)) or 'none'}). Choose the profile that "
            "matches your server (--profile lharries|json) or set the tool names in "
            "the [source] section of your config."
        )


class ResponseUnreadable(RetryableError):
    """A page of output that cannot be decoded (cut off, garbage)."""


class LakePathInvalid(IngestError):
    """The lake path cannot be a folder: it, or a folder above it, is a file."""

    def __init__(self, lake: Path, blocker: Path) -> None:
        self.lake = lake
        if blocker == lake:
            problem = f"{lake} is a file, not a folder"
        else:
            problem = f"{blocker} is a file, so {lake} cannot be a folder inside it"
        super().__init__(
            f"The lake path {lake} is not usable: {problem}. Pass --lake (or set "
            "`lake` in walake.toml) to a folder path, e.g. --lake ./lake."
        )


class OutputPathInvalid(IngestError):
    """An --out path that cannot receive what the command writes."""

    def __init__(self, out: Path, problem: str, fix: str) -> None:
        self.out = out
        super().__init__(f"Cannot write --out {out}: {problem}. {fix}")


class LakeFileMissing(IngestError):
    """The manifest lists a batch file that is not on disk."""

    def __init__(self, lake: Path, missing: list[Path], rebuildable: bool = False) -> None:
        self.lake = lake
        self.missing = missing
        shown = ", ".join(_relative(p, lake) for p in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        if rebuildable:
            fix = (f"Their raw batches are still there: run 'walake rebuild --lake "
                   f"{lake}' to recreate them from the raw layer, or restore the "
                   "files from a backup, then run the command again.")
        else:
            fix = ("Copy the whole lake folder (not only manifest.json), or restore "
                   "the files from a backup; 'walake rebuild --lake "
                   f"{lake}' recreates a Parquet file from the raw layer when its "
                   "raw batch file still exists. Then run the command again.")
        super().__init__(
            f"The lake {lake} lists batch file(s) that are missing: {shown}{more}. "
            + fix
        )


def _relative(path: Path, lake: Path) -> str:
    try:
        return str(path.relative_to(lake))
    except ValueError:
        return str(path)
