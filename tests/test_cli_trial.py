"""What a user trial found: numbers that are not numbers, terminal escapes from chat
data, a server left running, mistyped and read-only lakes, presets that reset the
rest of the file, and wording.

Each test runs the real command line (in-process with CliRunner, or as a child
process with `walake(...)`) on real files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import tomllib
from io import StringIO
from pathlib import Path

import psutil
import pytest
from lakecheck import ROOT, free_port, invoke, no_traceback, wait_for_url, walake
from rich.console import Console

from ingest.cli import _register
from ingest.demo.store import generate_store
from ingest.terminal import visible

_register()

# Anyone in a group chooses these: a bell, colour, a window title, clear screen,
# a bidi override, a C1 CSI and DEL
CHAT = "ctrl\x07\x1b[31mred"
SENDER = "Ana\x1b[1m"
TEXT = "\x1b]0;pwned\x07\x1b[2J urgent startup funding asap \u202e\x9b\x7f"
RAW = ("\x1b", "\x07", "\u202e", "\x9b", "\x7f")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=2, messages_per_chat=10)
    return path


@pytest.fixture
def lake(tmp_path: Path, store: Path) -> Path:
    folder = tmp_path / "lake"
    result = invoke("extract", "--lake", str(folder), "--source", "bridge",
                    "--store", str(store), "--timezone", "Europe/London", "-q")
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def hostile_lake(tmp_path: Path) -> Path:
    """A lake whose chat name, sender name and message text carry escapes."""
    export = tmp_path / "chat.txt"
    export.write_text(f"12/03/2024, 10:00 - {SENDER}: {TEXT}\n"
                      "12/03/2024, 10:05 - Bob: hello\n", encoding="utf-8")
    folder = tmp_path / "lake"
    walake("import", str(export), "--lake", str(folder), "--chat", CHAT,
           "--tz", "Europe/London")
    return folder


# 1. numbers: finite and in a sane range, or a usage error naming the value


@pytest.mark.parametrize(("args", "message"), [
    (["report", "--threshold", "inf"], "Invalid value for '--threshold': inf is not "
     "a finite number; give a score 0 or more."),
    (["report", "--threshold", "nan"], "Invalid value for '--threshold': nan is not "
     "a finite number; give a score 0 or more."),
    (["report", "--reply-hours", "inf"], "Invalid value for '--reply-hours': inf is "
     "not a finite number; give hours above 0, at most 87,600."),
    (["report", "--reply-hours", "1e10"], "Invalid value for '--reply-hours': "
     "10000000000.0 is not in the range 0<x<=87600."),
    (["report", "--reply-hours", "1e300"], "Invalid value for '--reply-hours': "
     "1e+300 is not in the range 0<x<=87600."),
    (["report", "--reply-hours", "0"], "Invalid value for '--reply-hours': 0.0 is "
     "not in the range 0<x<=87600."),
    (["sql", "select 1", "--reply-hours", "1e10"], "Invalid value for "
     "'--reply-hours': 10000000000.0 is not in the range 0<x<=87600."),
    (["export-chat", "x", "--threshold", "-inf"], "Invalid value for '--threshold': "
     "-inf is not a finite number; give a score 0 or more."),
    (["monitor", "--duration", "nan"], "Invalid value for '--duration': nan is not a "
     "finite number; give minutes above 0, at most 527,040."),
    (["monitor", "--interval", "inf"], "Invalid value for '--interval': inf is not a "
     "finite number; give seconds above 0, at most 86,400."),
    (["monitor", "--threshold", "nan"], "Invalid value for '--threshold': nan is not "
     "a finite number; give a score 0 or more."),
    (["sql", "select 1", "--limit", "99999999999999999999999"], "Invalid value for "
     "'--limit': 99999999999999999999999 is not in the range 1<=x<=10000000."),
    (["cleanup", "--dry-run", "--days", "999999"], "Invalid value for '--days': "
     "999999 is not in the range 1<=x<=36500."),
])
def test_numbers_must_be_finite_and_in_range(lake: Path, args: list[str],
                                             message: str) -> None:
    result = invoke(*args, "--lake", str(lake))
    no_traceback(result)
    assert result.exit_code == 2
    assert f"Error: {message}" in result.output


def test_the_largest_reply_window_works(lake: Path) -> None:
    result = invoke("report", "--lake", str(lake), "--reply-hours", "87600",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"]["reply_window_hours"] == 87600


def test_config_numbers_must_be_finite(tmp_path: Path) -> None:
    path = tmp_path / "walake.toml"
    path.write_text("[monitoring]\nopportunity_threshold = inf\n"
                    "check_interval_seconds = nan\n")
    result = invoke("config", "--config", str(path), "--validate")
    assert result.exit_code == 1
    assert "monitoring.opportunity_threshold = inf: Input should be a finite number" \
        in result.output
    assert "monitoring.check_interval_seconds = nan: Input should be a finite " \
        "number" in result.output


def test_config_log_level_takes_any_case_like_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "walake.toml"
    path.write_text('[resources]\nlog_level = "info"\n')
    assert invoke("config", "--config", str(path), "--validate").exit_code == 0
    shown = invoke("config", "--config", str(path), "--show")
    assert 'log_level = "INFO"' in shown.output, shown.output


# 3. terminal escapes from lake data are shown, never acted on


def test_visible_escapes_controls_and_bidi() -> None:
    assert visible(CHAT) == "ctrl\\x07\\x1b[31mred"
    assert visible("a\u2066b\u2069\u202ac\u0085\x00") == \
        "a\\u2066b\\u2069\\u202ac\\x85\\x00"
    assert visible("one\ntwo\tthree") == "one\\x0atwo\\x09three"
    assert visible("one\ntwo\tthree", keep_lines=True) == "one\ntwo\tthree"
    assert visible("café ✓ [bold]") == "café ✓ [bold]"


@pytest.mark.parametrize("command", [
    ["report"],
    ["sql", "select chat_name, sender_name, text from messages"],
])
def test_tables_show_escapes_from_the_lake(hostile_lake: Path,
                                           command: list[str]) -> None:
    done = walake(*command, "--lake", str(hostile_lake), env={"COLUMNS": "300"})
    assert not any(c in done.stdout for c in RAW), done.stdout
    assert "ctrl\\x07\\x1b[31mred" in done.stdout
    assert "Ana\\x1b[1m" in done.stdout
    assert "\\x1b]0;pwned\\x07\\x1b[2J urgent" in done.stdout


def test_json_on_stdout_keeps_the_data_but_no_raw_controls(hostile_lake: Path
                                                           ) -> None:
    done = walake("sql", "select chat_name, text from messages order by text",
                  "--format", "json", "--lake", str(hostile_lake))
    assert not any(c in done.stdout for c in RAW)
    assert json.loads(done.stdout)[0] == {"chat_name": CHAT, "text": TEXT}


def test_csv_to_a_terminal_shows_escapes_but_not_to_a_pipe() -> None:
    from ingest.terminal import stdout_text

    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    csv_text = f"chat,text\n{CHAT},\"{TEXT}\"\n"
    shown = stdout_text(csv_text, "csv", Terminal())
    assert not any(c in shown for c in RAW) and shown.count("\n") == 2
    assert stdout_text(csv_text, "csv", StringIO()) == csv_text


def test_out_files_keep_the_data_as_it_is(hostile_lake: Path, tmp_path: Path
                                          ) -> None:
    out = tmp_path / "chat.csv"
    walake("export-chat", "ctrl", "--format", "csv", "--out", str(out),
           "--lake", str(hostile_lake))
    text = out.read_text(encoding="utf-8")
    assert CHAT in text and TEXT in text


def test_monitor_alerts_show_escapes() -> None:
    from datetime import UTC, datetime

    from ingest.cli.monitor import Display
    from ingest.monitor_alerts import Alert

    now = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    alert = Alert("k1", now, "c1", CHAT, "s1", SENDER, now, now.replace(tzinfo=None),
                  7.0, ("urgent",), TEXT, 1.5)
    display = Display(as_json=False, quiet=False)
    out = StringIO()  # not a terminal: rich adds no styles, so no escape at all
    display.out = display.err = Console(file=out, highlight=False, width=300)
    display("alert", alert)
    display("error", f"chat {CHAT} failed")
    shown = out.getvalue()
    assert not any(c in shown for c in RAW), shown
    assert "ctrl\\x07\\x1b[31mred · Ana\\x1b[1m · score 7" in shown
    assert "\\x1b]0;pwned\\x07\\x1b[2J urgent" in shown
    assert "monitor: chat ctrl\\x07\\x1b[31mred failed" in shown


# 4. walake notebook: SIGTERM stops the marimo server too


def test_sigterm_stops_the_notebook_server(lake: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    walake_process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "notebook", "monitor", "--headless",
         "--port", str(port), "--lake", str(lake)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    servers: list[psutil.Process] = []
    try:
        wait_for_url(f"http://127.0.0.1:{port}/health", 60)
        servers = psutil.Process(walake_process.pid).children(recursive=True)
        assert servers
        walake_process.send_signal(signal.SIGTERM)
        code = walake_process.wait(timeout=20)
        _, alive = psutil.wait_procs(servers, timeout=10)
        assert alive == []
        assert code == 128 + signal.SIGTERM
    finally:  # whatever happened, leave no server behind
        for server in servers:
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()
        if walake_process.poll() is None:
            walake_process.kill()
            walake_process.wait()


# 5. a mistyped --lake is refused, never made into a new empty lake


@pytest.mark.parametrize("command", [["compact"], ["cleanup", "--dry-run"],
                                     ["cleanup"], ["rebuild", "--dry-run"],
                                     ["performance"]])
@pytest.mark.parametrize("made", [False, True])
def test_a_folder_with_no_lake_is_refused(tmp_path: Path, command: list[str],
                                          made: bool) -> None:
    typo = tmp_path / "lkae"
    if made:
        typo.mkdir()
    result = invoke(*command, "--lake", str(typo))
    no_traceback(result)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: No lake folder at {typo}. Pass --lake with the folder your imports "
        "write to (it holds manifest.json), or import something first.\n"
    )
    assert typo.exists() == made
    assert not made or list(typo.iterdir()) == []


# 6. a read-only lake: the commands that only read still work


@pytest.fixture
def read_only(lake: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every write under the lake fails as on a read-only file system."""
    real_open, real_mkdir = os.open, os.mkdir
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def inside(path: object) -> bool:
        return str(Path(os.fspath(path)).absolute()).startswith(str(lake.absolute()))

    def guarded_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & writes and inside(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path: object, *args: object, **kwargs: object) -> None:
        if inside(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    return lake


@pytest.mark.parametrize(("command", "expected"), [
    (["cleanup", "--dry-run"], "would remove 0 raw batch files older than 30 days"),
    (["rebuild", "--dry-run"], "can rebuild 1 batch"),
    (["performance"], "20 messages, 2 chats, 1 batch (by source: bridge 1)"),
])
def test_read_only_lake_for_commands_that_only_read(read_only: Path,
                                                    command: list[str],
                                                    expected: str) -> None:
    result = invoke(*command, "--lake", str(read_only), "--log-level", "WARNING")
    no_traceback(result)
    assert result.exit_code == 0, result.output
    assert expected in result.output
    assert "Read-only" not in result.output


def test_read_only_lake_still_refuses_writes(read_only: Path) -> None:
    result = invoke("compact", "--lake", str(read_only))
    assert result.exit_code == 1
    assert "Read-only file system. This command writes to the lake" in result.output


# 7. a preset changes only its own keys


def test_preset_keeps_every_other_key_and_the_comments(tmp_path: Path) -> None:
    path = tmp_path / "walake.toml"
    original = (
        '# my settings\nlake = "/data/lake"  # the big disk\n\n'
        "[extraction]\nmax_chats = 7  # few for now\ninclude_status_broadcast = true\n"
        "retry_attempts = 5\n\n"
        "[monitoring]\nopportunity_threshold = 4.5\nmax_history_size = 50\n\n"
        "[performance]\nmax_concurrent_requests = 4\n"
        "connection_timeout_seconds = 12.0\n\n"
        "[resources]\n# a week\ncleanup_old_files_days = 7\ncompress_old_data = true\n"
        'auto_cleanup = true\nlog_level = "INFO"\n\n'
        '[source]\ncommand = "uv"\nargs = ["run", "main.py"]\n'
    )
    path.write_text(original)
    walake("config", "--config", str(path), "--preset", "heavy")
    text = path.read_text()
    for comment in ("# my settings", "# the big disk", "# few for now", "# a week"):
        assert comment in text
    got = tomllib.loads(text)
    before = tomllib.loads(original)
    heavy = {"extraction": {"max_chats": 200, "max_messages_per_chat": 1000,
                            "batch_size": 20, "chat_delay_seconds": 1.0,
                            "message_delay_seconds": 0.5},
             "monitoring": {"check_interval_seconds": 15},
             "performance": {"memory_limit_mb": 500}}
    for section, values in heavy.items():
        before[section].update(values)
    assert got == before


def test_preset_refuses_a_file_with_other_bad_keys(tmp_path: Path) -> None:
    path = tmp_path / "walake.toml"
    path.write_text("[resources]\ncleanup_old_files_days = 0\n")
    result = invoke("config", "--config", str(path), "--preset", "light")
    assert result.exit_code == 1
    assert "resources.cleanup_old_files_days = 0: Input should be greater than or " \
        "equal to 1" in result.output
    assert path.read_text() == "[resources]\ncleanup_old_files_days = 0\n"


# 9. wording


def test_import_says_1_message_and_starts_with_the_file(tmp_path: Path) -> None:
    export = tmp_path / "chat.txt"
    export.write_text("12/03/2024, 10:00 - Ana: hi\n")
    done = walake("import", str(export), "--lake", str(tmp_path / "l"))
    assert done.stdout.startswith("chat.txt: 1 message (0 system, 0 media), 1 new")
    assert done.stderr == ""


def test_operate_counts_are_pluralized(lake: Path) -> None:
    done = walake("cleanup", "--dry-run", "--days", "1", "--lake", str(lake))
    assert "would remove 0 raw batch files older than 1 day (" in done.stdout
    done = walake("compact", "--lake", str(lake))
    assert "compacted 0 files into 0 (0 rows, 0 batches): 1 -> 1 Parquet file in " \
        in done.stdout
