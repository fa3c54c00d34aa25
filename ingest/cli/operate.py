"""`walake performance`, `compact`, `cleanup`, `rebuild` and `forget`: lake care."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ingest.cli.options import (
    existing_lake,
    json_option,
    lake_option,
    plural,
    resolve_lake,
)
from ingest.config import Config, load_config
from ingest.logs import LEVELS, configure_logging
from ingest.terminal import visible

if TYPE_CHECKING:
    from ingest.lake.manifest import Manifest


def operate_options(function):  # noqa: ANN001, ANN201 - a click decorator
    decorators = [
        lake_option,
        click.option("--config", "config_path", type=click.Path(dir_okay=False,
                     path_type=Path), help="Config file (default ./walake.toml)."),
        click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False),
                     help="Log level (default: the config's resources.log_level)."),
        json_option("Print the result as JSON."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def prepare(lake: Path | None, config_path: Path | None, log_level: str | None, *,
            existing: bool = False, read_only: bool = False) -> tuple[Path, Config]:
    """The lake and config of a command, with logging set up.

    `existing`: the lake must be there already (a mistyped --lake is refused);
    `read_only`: the command only reads, so the lake's log file is optional.
    """
    config, _ = load_config(config_path)
    lake = resolve_lake(lake, Path(config.lake) if config.lake else None)
    if existing:
        existing_lake(lake)
    configure_logging(log_level or config.resources.log_level, lake,
                      file_optional=read_only)
    return lake, config


@dataclass(frozen=True)
class LakeReader:
    """What a dry run needs of a LakeWriter, with no lock and no writes: the lake
    and its manifest (a read-only lake is fine)."""

    lake: Path
    manifest: Manifest


@contextmanager
def lake_access(lake: Path, read_only: bool) -> Iterator[Any]:
    """A LakeWriter, or for a read-only command a LakeReader over the lake."""
    from ingest.lake.manifest import Manifest
    from ingest.lake.writer import LakeWriter

    if read_only:
        yield LakeReader(lake, Manifest.load(lake))
        return
    with LakeWriter(lake) as writer:
        yield writer


def emit(data: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def by_source(sources: dict[str, int]) -> str:
    """Batches per source as text: 'mcp 6, export 2', or 'no sources yet'."""
    if not sources:
        return "no sources yet"
    return "by source: " + ", ".join(f"{name} {n:,}" for name, n in sorted(sources.items()))


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


@click.command()
@operate_options
def performance(lake: Path | None, config_path: Path | None, log_level: str | None,
                as_json: bool) -> None:
    """Show this machine next to the lake: size by layer, files, measured rates.

    \b
    Example:
        walake performance --json
    """
    from ingest.performance import performance_report

    lake, _ = prepare(lake, config_path, log_level, existing=True, read_only=True)
    report = performance_report(lake)
    m, k = report["machine"], report["lake"]
    rate = lambda r: f"{r:,.0f} msg/s" if r else "not measured yet"  # noqa: E731
    lines = [
        f"machine: {m['cpus']} CPUs, load {m['load_1m']}, memory "
        f"{size(m['memory_available'])} free of {size(m['memory_total'])}, "
        f"disk {size(m['disk_free'])} free of {size(m['disk_total'])}",
        f"lake {k['path']}: {plural(k['messages'], 'message')}, "
        f"{plural(k['chats'], 'chat')}, {plural(k['batches'], 'batch', 'batches')}"
        f" ({by_source(k['sources'])})",
    ]
    for layer, n in k["files"].items():
        per = k["bytes_per_message"].get(layer)
        lines.append(f"  {layer}: {plural(n, 'file')}, {size(k['bytes'].get(layer, 0))}"
                     + (f", {per:g} B/message" if per else ""))
    lines.append(f"  logs: {size(k['bytes'].get('logs', 0))}")
    lines.append(f"  compacted batches: {k['compacted_batches']}, raw cleaned up: "
                 f"{k['raw_removed_batches']}")
    lines.append(f"  extract rate: {rate(k['extract_rate'])}; import rate: "
                 f"{rate(k['import_rate'])}")
    emit(report, as_json, "\n".join(lines))


@click.command()
@operate_options
def compact(lake: Path | None, config_path: Path | None, log_level: str | None,
            as_json: bool) -> None:
    """Merge small Parquet batch files into larger files per partition.

    Readers never see a row twice or miss one, and an interrupted run loses
    nothing; rerun it at any time.

    \b
    Example:
        walake compact
    """
    from ingest.lake.compact import compact_lake
    from ingest.lake.writer import LakeWriter

    lake, _ = prepare(lake, config_path, log_level, existing=True)
    with LakeWriter(lake) as writer:
        s = compact_lake(writer)
    emit({"lake": str(lake), **s.to_json()}, as_json,
         f"compacted {plural(s.files_merged, 'file')} into {s.files_written} "
         f"({plural(s.rows, 'row')}, {plural(s.batches, 'batch', 'batches')}): "
         f"{s.files_before} -> {plural(s.files_after, 'Parquet file')} in "
         f"{s.seconds:.1f} s")


@click.command()
@operate_options
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("--days", type=click.IntRange(1, 36_500), help="Age in days (default: the "
              "config's resources.cleanup_old_files_days).")
def cleanup(lake: Path | None, config_path: Path | None, log_level: str | None,
            as_json: bool, dry_run: bool, days: int | None) -> None:
    """Remove old raw batches whose rows are already in compacted Parquet.

    \b
    Example:
        walake cleanup --dry-run --days 30
    """
    from ingest.lake.manifest import Manifest
    from ingest.lake.retention import cleanup_raw, plan_cleanup
    from ingest.lake.writer import LakeWriter

    lake, config = prepare(lake, config_path, log_level, existing=True,
                           read_only=dry_run)
    days = days or config.resources.cleanup_old_files_days
    if dry_run:  # only reads: no lock, and a read-only lake is fine
        plan = plan_cleanup(Manifest.load(lake), days)
    else:
        with LakeWriter(lake) as writer:
            plan = cleanup_raw(writer, days)
    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb} {plural(len(plan.due), 'raw batch file')} older than "
             f"{plural(days, 'day')} ({size(plan.bytes)})"]
    lines += [f"  {f}" for f in plan.files] if dry_run else []
    if plan.waiting_for_compaction:
        lines.append(f"kept {plural(plan.waiting_for_compaction, 'old raw file')} "
                     "whose rows are not compacted yet (run `walake compact` first)")
    emit({"lake": str(lake), **plan.to_json()}, as_json, "\n".join(lines))


@click.command()
@operate_options
@click.option("--timezone", help="Zone to read the sources' local times in (default: "
              "the config's source.timezone, else the zone the lake recorded for each "
              "source). A zone other than the recorded one moves the lake to it.")
@click.option("--dry-run", is_flag=True, help="Only list what can be rebuilt.")
def rebuild(lake: Path | None, config_path: Path | None, log_level: str | None,
            as_json: bool, timezone: str | None, dry_run: bool) -> None:
    """Re-derive the Parquet rows from the raw batches still present.

    Batches whose raw file was cleaned up keep their rows and are listed.

    \b
    Example:
        walake rebuild --timezone Europe/London
    """
    from ingest.lake.rebuild import rebuild_lake

    lake, config = prepare(lake, config_path, log_level, existing=True,
                           read_only=dry_run)
    asked = timezone or config.source.timezone
    with lake_access(lake, read_only=dry_run) as writer:
        # Each source in the zone the lake recorded for it, unless a zone is asked for
        context, moving = rebuild_zones(writer.manifest, asked)
        try:
            s = rebuild_lake(writer, context, dry_run=dry_run,
                             whole_sources=set(moving))
        except FileNotFoundError as exc:  # a raw file the manifest lists is gone
            raise click.ClickException(
                f"Cannot rebuild: {exc.filename} is missing, and rebuild re-derives "
                "rows from the raw batch files. Nothing was changed. Restore the "
                "file from a backup, or pull those chats again into a new lake."
            ) from exc
        if moving and not dry_run:  # every batch of those sources is in the new zone
            for keys in moving.values():
                for key in keys:
                    writer.manifest.set_zone(key, context.tz.key)
            writer.manifest.save()
    verb = "can rebuild" if dry_run else "rebuilt"
    batches = plural(len(s.rebuilt), "batch", "batches")
    lines = [f"{verb} {batches}; rows {s.rows_before:,} -> {s.rows_after:,}"
             if not dry_run else f"{verb} {batches}"]
    if moving:
        lines.append(f"{'would move' if dry_run else 'moved'} "
                     f"{', '.join(sorted(k for ks in moving.values() for k in ks))} "
                     f"to {context.tz.key}")
    if s.skipped:
        lines.append(f"could not rebuild {plural(len(s.skipped), 'batch', 'batches')}"
                     f"; {'it keeps its' if len(s.skipped) == 1 else 'they keep their'}"
                     " rows:")
        lines += [f"  {b}: {why}" for b, why in s.skipped.items()]
    emit({"lake": str(lake), **s.to_json()}, as_json, "\n".join(lines))
    if s.skipped and not dry_run:
        raise SystemExit(1)


def rebuild_zones(manifest: Any, asked: str | None) -> tuple[Any, dict[str, list[str]]]:
    """The decoding context (each source in its recorded zone) and the sources moving.

    Without a zone asked for, each source's rows are decoded in the zone the lake
    recorded for it (a lake from before zones were recorded: this machine's). A zone
    asked for applies to every source; those recorded in another zone move to it,
    which needs every batch of theirs rebuilt (`rebuild_lake(whole_sources=...)`).
    """
    from ingest.errors import IngestError
    from ingest.lake.rebuild import RebuildContext, is_message_batch
    from ingest.sources.factory import resolve_zone

    names = {c: i.get("name") or "" for c, i in manifest.data["chats"].items()}
    sources = {i.get("source") for i in manifest.batches.values() if is_message_batch(i)}
    zones, moving = {}, {}
    chosen = resolve_zone(asked) if asked else None
    for source in sorted(s for s in sources if s):
        recorded = manifest.zones_of(source)
        if chosen is not None:
            zones[source] = chosen
            other = sorted(k for k, z in recorded.items() if z != chosen.key)
            if other:
                moving[source] = other
        elif len(set(recorded.values())) == 1:
            zones[source] = resolve_zone(next(iter(recorded.values())))
        elif recorded:
            raise IngestError(
                f"This lake's {source} rows were read in different zones ("
                + ", ".join(f"{k}: {z}" for k, z in sorted(recorded.items()))
                + "), and its batches do not say which. Pass --timezone with the zone "
                "to rebuild them all in; nothing was changed."
            )
    return RebuildContext(chosen or resolve_zone(None), names, zones), moving


@click.command()
@operate_options
@click.option("--chat", help="Chat id (or exact chat name) to forget.")
@click.option("--sender", help="Sender id: a phone number or JID, both forms go (or "
              "an exact sender name).")
@click.option("--allow-again", is_flag=True,
              help="Remove now, but let later pulls and imports bring it back.")
@click.option("--dry-run", is_flag=True,
              help="Only report what would be removed; change nothing.")
def forget(lake: Path | None, config_path: Path | None, log_level: str | None,
           as_json: bool, chat: str | None, sender: str | None,
           allow_again: bool, dry_run: bool) -> None:
    """Remove a chat's or a person's messages from every layer of the lake.

    Every copy of those messages goes too, from any source. Later pulls and imports
    skip them, unless --allow-again. A name that several chats or people share is
    refused: pass the id.

    \b
    Examples:
        walake forget --chat 447700900010@s.whatsapp.net
        walake forget --sender 447700900045 --dry-run
        walake forget --sender "Ana" --allow-again
    """
    from ingest.lake.forget import forget as forget_in

    if bool(chat) == bool(sender):
        raise click.UsageError("give exactly one of --chat or --sender")
    lake, _ = prepare(lake, config_path, log_level, existing=True, read_only=dry_run)
    kind, value = ("chat", chat) if chat else ("sender", sender)
    with lake_access(lake, read_only=dry_run) as writer:  # a dry run only reads
        s = forget_in(writer, kind, value, allow_again=allow_again, dry_run=dry_run)
    emit({"lake": str(lake), **s.to_json()}, as_json, forget_text(s))


def forget_text(s: Any) -> str:
    """What a forget removed, or with --dry-run what it would remove."""
    rows = ", ".join(plural(n, f"{layer} row") for layer, n in s.rows.items())
    head, remove, rewrite = (
        (f"would forget the {s.kind}", "would remove", "would rewrite") if s.dry_run
        else (f"forgot the {s.kind}", "removed", "rewrote"))
    if s.dry_run:
        after = "Dry run: nothing was changed."
    elif s.blocked:
        after = "Later pulls and imports skip it."
    else:
        after = ("Messages that arrive from now on may come back (--allow-again); "
                 "what was removed is not pulled again.")
    text = (f"{head}: {remove} {rows or 'no rows'}, "
            f"{plural(s.raw_records, 'raw record')}, {plural(s.cursors, 'cursor')}, "
            f"{plural(s.log_lines, 'log line')}; {rewrite} "
            f"{plural(s.files_rewritten, 'file')}. {after}")
    for name, n in s.named_rows_kept.items():
        text += (f"\nKept {plural(n, 'message')} under the name {visible(name)!r} "
                 "with no id (an export's rows carry names only); if they are this "
                 f"person's, forget them too: walake forget --sender {visible(name)!r}")
    return text


def after_extract(lake: Path, config: Config) -> list[str]:
    """Compaction and retention that the config asks to run after an extract."""
    from ingest.lake.compact import compact_lake
    from ingest.lake.retention import cleanup_raw
    from ingest.lake.writer import LakeWriter

    notes = []
    res = config.resources
    if not (res.compress_old_data or res.auto_cleanup):
        return notes
    with LakeWriter(lake) as writer:
        if res.compress_old_data:
            s = compact_lake(writer)
            notes.append(f"compacted {plural(s.files_merged, 'file')} into "
                         f"{s.files_written}")
        if res.auto_cleanup:
            plan = cleanup_raw(writer, res.cleanup_old_files_days)
            notes.append(f"removed {plural(len(plan.due), 'old raw batch file')}")
    return notes


commands = [performance, compact, cleanup, rebuild, forget]
