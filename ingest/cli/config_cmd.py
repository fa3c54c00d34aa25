"""`walake config`: presets, the effective configuration, validation."""

from __future__ import annotations

from pathlib import Path

import click

from ingest.cli.options import json_option
from ingest.config import CONFIG_NAME, PRESETS, load_config, to_toml, with_preset
from ingest.errors import ConfigInvalid


@click.command(name="config")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Config file to use or write (default ./{CONFIG_NAME}).")
@click.option("--preset", "preset_name", type=click.Choice(list(PRESETS)),
              help="Set this preset's limits in the config file; the rest is kept.")
@click.option("--show", is_flag=True, help="Print the effective configuration.")
@click.option("--validate", is_flag=True, help="Check the config file and exit.")
@click.option("--estimate-resources", "estimate", is_flag=True,
              help="Disk, memory and time an extract of this size will need.")
@click.option("--max-chats", type=click.IntRange(1), help="With --estimate-resources.")
@click.option("--max-messages", type=click.IntRange(1),
              help="Messages per chat, with --estimate-resources.")
@click.option("--lake", type=click.Path(file_okay=False, path_type=Path),
              help="Lake whose measured figures to use (default: the config's).")
@json_option("The estimate as JSON.")
def config(config_path: Path | None, preset_name: str | None, show: bool,
           validate: bool, estimate: bool = False, max_chats: int | None = None,
           max_messages: int | None = None, lake: Path | None = None,
           as_json: bool = False) -> None:
    """Choose a preset, show or validate the configuration.

    A preset sets its limits (max_chats, max_messages_per_chat, batch_size, the two
    delays, check_interval_seconds, memory_limit_mb); every other key in the file
    and its comments are kept.

    \b
    Examples:
        walake config --preset heavy
        walake config --show
        walake config --estimate-resources --max-chats 500
    """
    if estimate:
        from ingest.cli.estimate_view import show_estimate

        show_estimate(config_path, lake, max_chats, max_messages, as_json)
        return
    if preset_name:
        target = config_path or Path(CONFIG_NAME)
        write_preset(target, preset_name)
        click.echo(f"Wrote the {preset_name} preset to {target}")
    if validate:
        current, path = load_config(config_path)
        click.echo(f"{path or 'defaults (no config file)'}: valid")
    if show or not (preset_name or validate):
        current, path = load_config(config_path)
        click.echo(f"# effective configuration, from {path or 'built-in defaults'}")
        click.echo(to_toml(current))


def write_preset(target: Path, name: str) -> None:
    """Set the preset's keys in `target`; every other key and comment stays."""
    try:
        text = target.read_text(encoding="utf-8") if target.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([f"cannot read the file: {exc}"], target) from None
    target.write_text(with_preset(text, name, target), encoding="utf-8")


commands = [config]
