"""The `walake` command line: one module per group of commands, registered here."""

from __future__ import annotations

import errno
import importlib
import logging
import sys

import click

from ingest.errors import IngestError

# Each module defines `commands`, a list of click commands to add to the group.
COMMAND_MODULES = ("extract", "demo", "config_cmd", "diagnostics", "report", "imports", "monitor",
                   "operate")


class WalakeGroup(click.Group):
    """Turns walake's typed errors into `Error: ...` and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except IngestError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise click.ClickException(
                f"No space left on device while writing {exc.filename or 'the lake'} "
                f"({exc.strerror}). Nothing half-written counts: the lake keeps only "
                "whole batches. Free some space and run the command again."
            ) from exc


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


def setup_logging(verbose: bool, level: str | None = None) -> None:
    chosen = "DEBUG" if verbose else (level or "WARNING")
    logging.basicConfig(
        level=chosen.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    _register()
    cli()
