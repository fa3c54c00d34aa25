"""Bad input gets `Error: ...` naming the value and the fix, never a traceback.

Each test pins the message and the exit code (1: an error, 2: a usage error,
130: interrupted) of one case a user met.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest
from lakecheck import invoke, no_traceback

from ingest.cli import _register, os_error_message
from ingest.cli.estimate_view import basis_sentence
from ingest.cli.monitor import summary_line
from ingest.cli.options import duration, plural
from ingest.demo.store import generate_store
from ingest.lake.manifest import Manifest

_register()

STORE_HINT = ("Pass the bridge's messages.db (whatsapp-mcp/whatsapp-bridge/store/"
              "messages.db), or create a sample one with 'walake demo --store PATH' "
              "(PATH must not exist yet).")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=3, messages_per_chat=20)
    return path


@pytest.fixture
def lake(tmp_path: Path, store: Path) -> Path:
    """A lake of three bridge batches (one chat each), raw files kept."""
    folder = tmp_path / "lake"
    result = invoke("extract", "--lake", str(folder), "--source", "bridge",
                    "--store", str(store), "--batch-size", "1", "--timezone",
                    "Europe/London", "-q")
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("not a folder\n")
    return path


def batch_files(lake: Path, batch: str) -> dict[str, Path]:
    info = Manifest.load(lake).batches[batch]
    return {layer: lake / relative for layer, relative in info["files"].items()}


# 1a. read-only lake, permission denied: the path and the fix


def test_read_only_lake_names_the_file_and_the_fix(lake: Path,
                                                   monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    def refuse(self: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", self.baseFilename)

    monkeypatch.setattr("ingest.logs.PrivateRotatingFileHandler._open", refuse)
    log = lake / "logs" / "walake.log"
    for command in (["compact"], ["forget", "--chat", "x"], ["cleanup"]):
        result = invoke(*command, "--lake", str(lake))
        no_traceback(result)
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {log}: Read-only file system. This command writes to the lake "
            "(its manifest, batches, lock and logs/walake.log): remount it read-write, "
            "or copy the lake to a writable folder and pass --lake with that folder.\n"
        )


@pytest.mark.parametrize(("code", "text"), [
    (errno.EACCES, "/l/.lock: Permission denied. Give your user access to it (e.g. "
                   "chmod u+rwX, or chown), or choose a folder you own (--lake, --out)."),
    (errno.EPERM, "/l/.lock: Operation not permitted. Give your user access to it "
                  "(e.g. chmod u+rwX, or chown), or choose a folder you own (--lake, "
                  "--out)."),
    (errno.ENOTDIR, "/l/.lock: Not a directory. A part of this path is a file, not a "
                    "folder: choose a path whose parent folders are folders."),
    (errno.ENOENT, "/l/.lock: No such file or directory. Check the path: create the "
                   "missing folder first, or restore the file if it was removed."),
    (errno.EEXIST, "/l/.lock: File exists. Remove it or choose another path."),
    (errno.EISDIR, "/l/.lock: Is a directory. It is a folder, but a file is needed "
                   "here: pass a file path."),
])
def test_path_errors_become_messages(code: int, text: str) -> None:
    import os

    assert os_error_message(OSError(code, os.strerror(code), "/l/.lock")) == text


def test_other_os_errors_are_not_hidden() -> None:
    assert os_error_message(OSError(errno.EIO, "I/O error", "x")) is None


def test_permission_denied_in_a_command_is_an_error(lake: Path,
                                                    monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(lake / ".lock"))

    monkeypatch.setattr("ingest.lake.writer.LakeWriter.__enter__", refuse)
    result = invoke("compact", "--lake", str(lake))
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {lake / '.lock'}: Permission denied. ")


# 1b. a lake path under a file


@pytest.mark.parametrize("command", [["extract"], ["report"], ["compact"],
                                     ["sql", "select 1"], ["performance"]])
def test_lake_under_a_file(afile: Path, command: list[str]) -> None:
    result = invoke(*command, "--lake", str(afile / "sub"))
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: The lake path {afile / 'sub'} is not usable: {afile} is a file, so "
        f"{afile / 'sub'} cannot be a folder inside it. Pass --lake (or set `lake` in "
        "walake.toml) to a folder path, e.g. --lake ./lake.\n"
    )


def test_configured_lake_that_is_a_file(afile: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'lake = "{afile}"\n')
    result = invoke("report", "--config", str(config))
    assert result.exit_code == 1
    assert f"Error: The lake path {afile} is not usable: {afile} is a file, not a " \
           "folder." in result.output


# 1c. a Parquet file the manifest lists is gone


def test_missing_parquet_file_says_rebuild_can_recreate_it(lake: Path) -> None:
    files = batch_files(lake, "b00000002")
    files["messages"].unlink()
    relative = files["messages"].relative_to(lake)
    expected = (
        f"Error: The lake {lake.resolve()} lists batch file(s) that are missing: "
        f"{relative}. Their raw batches are still there: run 'walake rebuild --lake "
        f"{lake.resolve()}' to recreate them from the raw layer, or restore the files "
        "from a backup, then run the command again.\n"
    )
    for command in (["sql", "select count(*) from messages"], ["report"], ["compact"]):
        result = invoke(*command, "--lake", str(lake))
        no_traceback(result)
        assert result.exit_code == 1, command
        assert result.output == expected, command
    result = invoke("rebuild", "--lake", str(lake), "--timezone", "Europe/London")
    assert result.exit_code == 0, result.output
    assert invoke("sql", "select 1", "--lake", str(lake)).exit_code == 0


def test_missing_parquet_and_raw_file(lake: Path) -> None:
    files = batch_files(lake, "b00000002")
    files["messages"].unlink()
    files["raw"].unlink()
    result = invoke("sql", "select 1", "--lake", str(lake))
    assert result.exit_code == 1
    assert "'walake rebuild --lake " in result.output
    assert "recreates a Parquet file from the raw layer when its raw batch file " \
           "still exists" in result.output
    result = invoke("rebuild", "--lake", str(lake), "--timezone", "Europe/London")
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "Nothing was changed" in result.output


def test_rebuild_names_a_missing_raw_file(lake: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    raw = lake / "raw" / "gone.jsonl.zst"

    def gone(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(raw))

    monkeypatch.setattr("ingest.lake.rebuild.rebuild_lake", gone)
    result = invoke("rebuild", "--lake", str(lake), "--timezone", "Europe/London")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot rebuild: {raw} is missing, and rebuild re-derives rows from "
        "the raw batch files. Nothing was changed. Restore the file from a backup, or "
        "pull those chats again into a new lake.\n"
    )


# 1d/1e. --out paths


def test_report_csv_out_is_a_file(lake: Path, afile: Path) -> None:
    result = invoke("report", "--lake", str(lake), "--format", "csv", "--out",
                    str(afile))
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot write --out {afile}: it is a file, but --format csv and "
        "parquet write one file per report section into a folder. Pass a folder path "
        "(it is created if missing), or use --format json to write one file.\n"
    )


@pytest.mark.parametrize("command", [
    ["export-chat", "Kalani", "--format", "csv"],
    ["report", "--format", "json"],
    ["sql", "select 1", "--format", "csv"],
])
def test_out_in_a_missing_folder(lake: Path, tmp_path: Path,
                                 command: list[str]) -> None:
    out = tmp_path / "nodir" / "x.csv"
    result = invoke(*command, "--lake", str(lake), "--out", str(out))
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot write --out {out}: the folder {out.parent} does not exist. "
        f"Create it first (mkdir -p {out.parent}) or choose another --out.\n"
    )


def test_out_is_a_folder(lake: Path, tmp_path: Path) -> None:
    result = invoke("sql", "select 1", "--lake", str(lake), "--format", "json",
                    "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot write --out {tmp_path}: it is a folder, and this writes one "
        "file. Pass a file path, e.g. a new file inside that folder.\n"
    )


# 1f/2. a file that is not a bridge store


@pytest.fixture(params=["text", "random", "sqlite"])
def not_a_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / f"{request.param}.db"
    if request.param == "text":
        path.write_text("hello\n")
        return path, "not a SQLite database"
    if request.param == "random":
        path.write_bytes(bytes(range(256)) * 20)
        return path, "not a SQLite database"
    with sqlite3.connect(path) as con:
        con.execute("create table other (a)")
    con.close()
    return path, "no chats/messages tables"


@pytest.mark.parametrize("command", [
    ["extract", "--source", "bridge"],
    ["extract"],  # through the built-in server: checked before it starts
    ["demo", "--no-report"],
])
def test_not_a_bridge_store(not_a_store: tuple[Path, str], tmp_path: Path,
                            command: list[str]) -> None:
    path, reason = not_a_store
    result = invoke(*command, "--store", str(path), "--lake", str(tmp_path / "l"),
                    "-q")
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path} is not a whatsapp-bridge store ({reason}). {STORE_HINT}\n"
    )


def test_built_in_server_refuses_a_non_store(not_a_store: tuple[Path, str],
                                             capsys: pytest.CaptureFixture) -> None:
    from ingest.demo.server import main

    path, reason = not_a_store
    with pytest.raises(SystemExit) as stopped:
        main(["--store", str(path)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        f"error: {path} is not a whatsapp-bridge store ({reason}). {STORE_HINT}\n"
    )


# 1g. counts


@pytest.mark.parametrize(("option", "value"), [
    ("--chats", "-1"), ("--messages-per-chat", "0"), ("--max-chats", "0"),
    ("--batch-size", "-3"), ("--concurrency", "0"), ("--concurrency", "50"),
])
def test_counts_must_be_positive(option: str, value: str, tmp_path: Path) -> None:
    result = invoke("demo", option, value, "--lake", str(tmp_path / "l"),
                    "--store", str(tmp_path / "s.db"))
    allowed = "1<=x<=16" if option == "--concurrency" else "x>=1"
    assert result.exit_code == 2
    assert f"Error: Invalid value for '{option}': {value} is not in the range " \
        f"{allowed}." in result.output
    assert not (tmp_path / "s.db").exists()


# 3. report, sql, export-chat read the config's lake


def test_read_commands_use_the_configured_lake(lake: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'lake = "{lake}"\n')
    result = invoke("sql", "select count(*) as n from messages", "--config",
                    str(config), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 60}]
    result = invoke("report", "--config", str(config), "--format", "json")
    assert json.loads(result.output)["summary"]["messages"] == 60
    result = invoke("export-chat", "Kalani", "--config", str(config))
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "walake.toml").write_text(f'lake = "{lake}"\n')
    result = invoke("sql", "select count(*) as n from messages", "--format", "json")
    assert json.loads(result.output) == [{"n": 60}]


@pytest.mark.parametrize("command", ["report", "sql", "export-chat", "diagnostics",
                                     "notebook", "import"])
def test_config_flag_everywhere(command: str) -> None:
    result = invoke(command, "--help")
    assert "--config FILE" in result.output


# 4. the time zone in the config


def test_config_validate_rejects_an_unknown_zone(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[source]\ntimezone = "Mars/Olympus"\n')
    result = invoke("config", "--validate", "--config", str(config))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Invalid configuration in {config}:\n  source.timezone = "
        "'Mars/Olympus': not a known time zone; use an IANA name such as "
        "'Europe/London' or 'America/Sao_Paulo'\n"
    )
    config.write_text('[source]\ntimezone = "America/Sao_Paulo"\n')
    assert invoke("config", "--validate", "--config", str(config)).exit_code == 0


# 5. no server configured


def test_no_server_configured_names_real_flags(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WALAKE_CONFIG", raising=False)
    result = invoke("extract", "--lake", str(tmp_path / "l"), "-q")
    assert result.exit_code == 1
    assert "--server-command" not in result.output
    assert result.output == (
        "Error: Invalid configuration:\n  source.command is not set: say how to start "
        "your WhatsApp MCP server in the [source] section of walake.toml, e.g. "
        'command = "uv" and args = ["--directory", "/path/to/whatsapp-mcp/'
        'whatsapp-mcp-server", "run", "main.py"] (optional: env, cwd, profile); or '
        "pass --store PATH to serve a bridge store (messages.db) through the built-in "
        "server, or --source bridge --store PATH to read it directly\n"
    )


# 6. thresholds


@pytest.mark.parametrize("command", [["report"], ["sql", "select 1"],
                                     ["export-chat", "x"]])
def test_negative_threshold_is_a_usage_error(lake: Path, command: list[str]) -> None:
    result = invoke(*command, "--lake", str(lake), "--threshold", "-1")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--threshold': -1.0 is not in the range x>=0." \
        in result.output


# 7. Ctrl+C


def test_ctrl_c_during_extract_says_what_was_kept(lake: Path, store: Path,
                                                  monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    import ingest.cli.extract as extract_cli

    real_run = extract_cli.run

    def run_then_stop(*args: object, **kwargs: object) -> None:
        real_run(*args, **kwargs)
        raise KeyboardInterrupt

    fresh = lake.parent / "fresh"
    monkeypatch.setattr(extract_cli, "run", run_then_stop)
    result = invoke("extract", "--lake", str(fresh), "--source", "bridge",
                    "--store", str(store), "--timezone", "Europe/London", "-q")
    assert result.exit_code == 130
    assert "Aborted!" not in result.output
    assert result.output == (
        f"\nInterrupted. The lake {fresh} keeps 60 new messages from 1 batch recorded "
        "before the stop; nothing half-written counts. Run the same command again (or "
        "walake extract --resume) to continue where it stopped.\n"
    )


def test_ctrl_c_before_any_batch(tmp_path: Path, store: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ingest.cli.demo.run", stop)
    result = invoke("demo", "--lake", str(tmp_path / "l"), "--store", str(store))
    assert result.exit_code == 130
    assert "keeps 0 new messages from 0 batches recorded before the stop" \
        in result.output
    assert "Run the same command again to continue where it stopped." in result.output


def test_ctrl_c_during_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    export = tmp_path / "chat.txt"
    export.write_text("12/03/2024, 10:00 - Ana: hi\n")
    monkeypatch.setattr("ingest.cli.imports.import_exports", stop)
    result = invoke("import", str(export), "--lake", str(tmp_path / "l"))
    assert result.exit_code == 130
    assert "Run the same import again to continue: files already imported add " \
           "nothing." in result.output


# 8. wording


def test_extract_summary_is_pluralized(tmp_path: Path, store: Path) -> None:
    result = invoke("extract", "--lake", str(tmp_path / "l"), "--source", "bridge",
                    "--store", str(store), "--timezone", "Europe/London", "-q")
    assert result.exit_code == 0, result.output
    assert "60 new messages from 3 of 3 chats in 1 batch (" in result.output


def test_words() -> None:
    assert plural(1, "new message") == "1 new message"
    assert plural(2, "batch", "batches") == "2 batches"
    assert plural(1_000, "chat") == "1,000 chats"
    assert duration(2.54) == "2.5 s"
    assert duration(600) == "10 min"
    assert duration(5400) == "1.5 h"
    assert duration(50_352_894.8) == "583 days"
    assert basis_sentence("defaults", "the lake is empty, so these figures use the "
                          "documented defaults (see ingest/estimate.py)") == (
        "The lake is empty, so these figures use the documented defaults (see "
        "ingest/estimate.py).")


def test_monitor_lag_is_humanized() -> None:
    from ingest.monitor import MonitorStats

    stats = MonitorStats("s1", "mcp:lharries", "2024-03-04T10:00:00+00:00",
                         status="stopped", ticks=1, messages=1, alerts=1, errors=0,
                         tick_seconds_total=0.5, tick_seconds_max=1.25,
                         lag_seconds_max=50_352_894.8)
    assert summary_line(stats, Path("lake")) == (
        "Monitor stopped: 1 tick, 1 new message, 1 alert, 0 errors; tick 0.50 s mean, "
        "1.25 s max, lag 583 days max -> lake"
    )


def test_performance_sources_as_text(lake: Path) -> None:
    result = invoke("performance", "--lake", str(lake))
    assert result.exit_code == 0, result.output
    assert "60 messages, 3 chats, 3 batches (by source: bridge 3)" in result.output
    assert "{" not in result.output


def test_no_match_quotes_the_name_plainly(lake: Path) -> None:
    result = invoke("export-chat", "nobody's chat", "--lake", str(lake))
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: No chat matches \"nobody's chat\" (by id, or by name, "
        "case-insensitive).")


def test_diagnostics_help_describes_every_option() -> None:
    result = invoke("diagnostics", "--help")
    assert "--config FILE              Config file (default ./walake.toml)." \
        in result.output
    assert "--profile [lharries|json]  Kind of MCP server" in result.output


@pytest.mark.parametrize("args", [
    ["--source", "bridge"],                          # no store named
    ["--source", "bridge", "--store", "README.md"],  # not a store
    ["--timezone", "Mars/Olympus"],
])
def test_an_extract_refused_at_the_start_leaves_no_lake_folder(tmp_path, args):
    lake = tmp_path / "lake"
    result = invoke("extract", "--lake", str(lake), *args)

    assert result.exit_code != 0
    no_traceback(result)
    assert not lake.exists()


def test_monitor_with_a_bad_keyword_file_stops_before_any_tick(tmp_path):
    store = tmp_path / "s.db"
    generate_store(store, chats=2, messages_per_chat=5)
    lake = tmp_path / "lake"
    (lake / "keywords").mkdir(parents=True)
    (lake / "keywords" / "en.csv").write_text("category,weight,keyword\nurgent,inf,asap\n")
    result = invoke("monitor", "--store", str(store), "--lake", str(lake),
                    "--duration", "0.05", "-q")

    assert result.exit_code == 1
    no_traceback(result)
    assert "weight 'inf' must be a finite number of 0 or more" in result.output
    assert not (lake / "manifest.json").exists()  # nothing pulled


@pytest.mark.parametrize("command", [
    ["extract", "--source", "bridge"], ["import"], ["diagnostics", "--source", "bridge"],
])
def test_a_failure_under_json_still_prints_one_json_object(tmp_path: Path,
                                                           command: list[str]) -> None:
    """A script reading stdout gets JSON whatever happens; the error stays on stderr."""
    afile = tmp_path / "notes.txt"
    afile.write_text("not a store and not an export\n")
    where = ["--store", str(afile)] if command[0] != "import" else [str(afile)]
    result = invoke(*command, *where, "--lake", str(tmp_path / "lake"), "--json")
    if command[0] == "diagnostics":
        assert result.exit_code == 1 and json.loads(result.stdout)  # its own report
        return
    assert result.exit_code == 1, result.output
    answers = [json.loads(line) for line in result.stdout.strip().splitlines()]
    failed = answers[-1]
    assert failed.get("status") == "failed" or failed.get("ok") is False
    assert afile.name in failed["error"]
    assert "Error: " in result.stderr
    no_traceback(result)


@pytest.mark.parametrize("command", [["monitor", "--duration", "0.05"],
                                     ["extract"], ["extract", "--store"]])
def test_a_refused_command_leaves_a_folder_that_is_no_lake_as_it_was(
        tmp_path: Path, store: Path, command: list[str]) -> None:
    """No server configured, or a folder holding the user's own messages/."""
    if command[-1] == "--store":
        command = [*command, str(store)]
    folder = tmp_path / "mine"
    (folder / "messages").mkdir(parents=True)
    (folder / "messages" / "note.txt").write_text("my notes\n")
    folder.chmod(0o755)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    config = tmp_path / "walake.toml"
    config.write_text("[source]\nprofile = \"lharries\"\n")

    result = invoke(*command, "--lake", str(folder), "--config", str(config))

    assert result.exit_code == 1, result.output
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert folder.stat().st_mode & 0o777 == 0o755
    no_traceback(result)


def test_a_config_value_of_the_wrong_type_is_refused_not_coerced(tmp_path: Path) -> None:
    config = tmp_path / "walake.toml"
    config.write_text("[extraction]\nmax_chats = true\n")
    result = invoke("config", "--validate", "--config", str(config))
    assert result.exit_code == 1
    assert "extraction.max_chats = True: Input should be a valid integer" in result.output
