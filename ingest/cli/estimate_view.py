"""`walake config --estimate-resources`: the estimate as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ingest.cli.operate import size
from ingest.cli.options import resolve_lake
from ingest.config import load_config
from ingest.estimate import estimate_resources


def show_estimate(config_path: Path | None, lake: Path | None, max_chats: int | None,
                  max_messages: int | None, as_json: bool) -> None:
    config, _ = load_config(config_path)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    e = estimate_resources(lake, config, max_chats, max_messages)
    if as_json:
        click.echo(json.dumps({"lake": str(lake), **e.to_json()}, indent=2))
        return
    layers = ", ".join(f"{k} {size(v)}" for k, v in e.disk_by_layer.items())
    click.echo(
        f"{e.chats} chats x {e.messages_per_chat:,} messages = {e.messages:,} "
        f"messages\n  disk: {size(e.disk_bytes)} ({layers})\n"
        f"  memory: about {e.memory_mb} MB\n"
        f"  time: about {e.seconds:,.0f} s (of which {e.pacing_seconds:,.0f} s pacing)\n"
        f"  basis: {basis_sentence(e.basis, e.basis_detail)}"
    )


def basis_sentence(basis: str, detail: str) -> str:
    """Where the figures come from, as one sentence."""
    if basis == "measured":
        return f"measured on this lake ({detail})."
    return detail[0].upper() + detail[1:] + "."
