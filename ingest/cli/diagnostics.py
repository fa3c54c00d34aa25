"""`walake diagnostics`: is the server reachable and right, is the lake writable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from ingest.cli.options import json_option, lake_option, resolve_lake
from ingest.config import load_config, with_overrides
from ingest.diagnose import Check, run_checks


@click.command()
@lake_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default ./walake.toml).")
@click.option("--source", "source", type=click.Choice(["mcp", "bridge"]),
              help="Check the MCP server (default), or the bridge's store.")
@click.option("--store", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The bridge store: read directly with --source bridge, else "
                   "served through the built-in server.")
@click.option("--profile", type=click.Choice(["lharries", "json"]),
              help="Kind of MCP server (default: the config's source.profile, "
              "lharries).")
@json_option("Print the checks as JSON.")
def diagnostics(lake: Path | None, config_path: Path | None, source: str | None,
                store: Path | None, profile: str | None, as_json: bool) -> None:
    """Check the MCP server (or the bridge store), its tools, its speed, and the lake.

    Exits non-zero, with a remedy per failed check, when something is wrong.

    \b
    Example:
        walake diagnostics
    """
    config, _ = load_config(config_path)
    config = with_overrides(config, "source", profile=profile, kind=source)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None, check=False)
    checks = asyncio.run(run_checks(config, lake, store))
    show(checks, as_json)
    if any(not c.ok for c in checks):
        raise SystemExit(1)


def show(checks: list[Check], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
        return
    for check in checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
        if not check.ok and check.remedy:
            click.echo(f"     fix: {check.remedy}")


commands = [diagnostics]
