"""The `walake` command line: one module per group of commands, registered here."""

from __future__ import annotations

import errno
import importlib
import json
from pathlib import Path

import click

from ingest.cli.options import JSON_FAILURES
from ingest.errors import IngestError
from ingest.terminal import visible

# Each module defines `commands`, a list of click commands to add to the group.
COMMAND_MODULES = (
    "extract", "demo", "config_cmd", "diagnostics", "report", "imports", "monitor",
    "operate",
)


class WalakeGroup(click.Group):
    """Turns walake's typed errors into `Error: ...` and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except IngestError as exc:  # it may quote lake data (ChatAmbiguous)
            raise failure(ctx, visible(str(exc), keep_lines=True)) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise failure(ctx, (
                    f"No space left on device while writing "
                    f"{exc.filename or 'the lake'} ({exc.strerror}). Nothing "
                    "half-written counts: the lake keeps only whole batches. Free "
                    "some space and run the command again.")) from exc
            message = os_error_message(exc)
            if message is None:
                raise
            raise failure(ctx, message) from exc


def failure(ctx: click.Context, message: str) -> click.ClickException:
    """The error to exit with; under --json its JSON object goes to stdout first."""
    if ctx.meta.get(JSON_FAILURES):
        click.echo(json.dumps({"status": "failed", "error": message}))
    return click.ClickException(message)


# errno -> the fix for a path error (the message names the path and the cause)
OS_ERRORS = {
    errno.EROFS: "This command writes to the lake (its manifest, batches, lock and "
                 "logs/walake.log): remount it read-write, or copy the lake to a "
                 "writable folder and pass --lake with that folder.",
    errno.EACCES: "Give your user access to it (e.g. chmod u+rwX, or chown), or "
                  "choose a folder you own (--lake, --out).",
    errno.EPERM: "Give your user access to it (e.g. chmod u+rwX, or chown), or "
                 "choose a folder you own (--lake, --out).",
    errno.ENOTDIR: "A part of this path is a file, not a folder: choose a path whose "
                   "parent folders are folders.",
    errno.ENOENT: "Check the path: create the missing folder first, or restore the "
                  "file if it was removed.",
    errno.EEXIST: "Remove it or choose another path.",
    errno.EISDIR: "It is a folder, but a file is needed here: pass a file path.",
}


def os_error_message(exc: OSError) -> str | None:
    """`Error:` text for a path error (the path, the cause, the fix), else None."""
    fix = OS_ERRORS.get(exc.errno) if exc.errno is not None else None
    if fix is None:
        return None
    cause = exc.strerror or str(exc)
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return f"{where}{cause}. {fix}"


@click.group(cls=WalakeGroup)
@click.version_option(package_name="walake")
def cli() -> None:
    """walake: a local-first WhatsApp analytics lake.

    Pull chats from a WhatsApp MCP server, the bridge's SQLite store or chat
    exports into a local lake, then find the opportunities in them.
    """


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"ingest.cli.{name}")
        for command in module.commands:
            cli.add_command(command)


def setup_logging(
    verbose: bool, level: str | None = None, lake: Path | None = None
) -> None:
    """Logs to stderr and, for a command that writes `lake`, to its log file once
    it is a lake (a command refused at the start leaves a folder as it was)."""
    from ingest.logs import configure_logging

    chosen = "DEBUG" if verbose else (level or "WARNING")
    is_lake = lake is not None and (lake / "manifest.json").is_file()
    configure_logging(chosen, lake if is_lake else None)


def main() -> None:
    _register()
    cli()
