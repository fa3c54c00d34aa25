"""Server faults through a real server process (the demo server's fault knobs).

Each run pulls a small store over stdio with one fault injected; the lake must end
up equal to the store (at once when a retry helps, after a clean rerun otherwise),
and what the user sees is a sentence, never a traceback. The long version, with
random faults and SIGKILLs, is bench/chaos.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lakecheck import lake_counts, store_counts, walake

from ingest.demo.store import generate_store

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]
CONFIG = """[source]
page_size = 20
[extraction]
chat_delay_seconds = 0
message_delay_seconds = 0
retry_attempts = 3
[performance]
connection_timeout_seconds = {timeout}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "messages.db"
    generate_store(path, chats=3, messages_per_chat=60, seed=21)
    return path


def extract(store: Path, tmp_path: Path, faults: str, *extra: str,
            timeout: float = 8) -> tuple[int, dict, str]:
    config = tmp_path / "walake.toml"
    config.write_text(CONFIG.format(timeout=timeout))
    done = walake("extract", "--store", str(store), "--lake", str(tmp_path / "lake"),
                  "--config", str(config), *ZONE, *ALL, "--json", "-q", *extra,
                  env={"WALAKE_DEMO_FAULTS": faults}, check=False)
    summary = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, summary, done.stderr


@pytest.mark.parametrize("faults", [
    "exit_after_calls=3",      # the server exits mid-call: restarted, call retried
    "garbage_on_call=3",       # not the lharries format: retried
    "noise_on_call=3",         # a stray stdout line, as upstream's prints
    "slow_ms=40",              # slow but inside the timeout
])
def test_a_retry_helps_and_the_lake_equals_the_store(store, tmp_path, faults):
    code, summary, _ = extract(store, tmp_path, faults)

    assert code == 0 and summary["status"] == "ok"
    assert lake_counts(tmp_path / "lake") == store_counts(store)
    if faults.startswith(("exit", "garbage")):
        assert summary["retries"] >= 1


def test_a_call_hanging_past_the_timeout_is_retried(store, tmp_path):
    code, summary, stderr = extract(store, tmp_path, "hang_on_call=3", timeout=3)

    assert code == 0 and summary["retries"] >= 1
    assert "did not answer 'list_messages' within 3 s" in stderr
    assert lake_counts(tmp_path / "lake") == store_counts(store)


@pytest.mark.parametrize("profile", ["lharries", "json"])
def test_a_page_cut_off_is_caught_by_the_end_check(store, tmp_path, profile):
    """A cut page looks like a short last page; one more call per walk tells them
    apart (ingest/pull.py `_end_holds`), so nothing is lost and no cut text lands."""
    code, summary, stderr = extract(store, tmp_path, "truncate_on_call=3",
                                    "--profile", profile)

    assert code == 0 and summary["status"] == "ok"
    assert "ended short of what the server holds" in stderr
    assert lake_counts(tmp_path / "lake") == store_counts(store)


def test_end_check_costs_one_call_per_chat_walk(store, tmp_path):
    _, summary, _ = extract(store, tmp_path, "", "--batch-size", "10")
    chats = len(store_counts(store))
    pages = -(-60 // 20) + 1  # windows of 20 rows; a full page asks for one more
    # list_chats + per chat: its windows (a full one drops its oldest second, so at
    # most one more) + the end check
    assert summary["calls"] <= 1 + chats * (pages + 2)
    assert summary["calls"] >= 1 + chats * 2


def test_a_tool_error_fails_that_chat_only_then_a_rerun_completes(store, tmp_path):
    code, summary, stderr = extract(store, tmp_path, "error_on_call=3")

    assert code == 1 and summary.get("status", "partial") == "partial"
    assert "injected fault" in stderr  # the server's own words
    assert sum(lake_counts(tmp_path / "lake").values()) < sum(store_counts(store).values())
    code, summary, _ = extract(store, tmp_path, "")
    assert code == 0
    assert lake_counts(tmp_path / "lake") == store_counts(store)


def test_a_server_that_never_starts_is_a_clear_error(tmp_path):
    (tmp_path / "walake.toml").write_text('[source]\ncommand = "false"\n'
                                          "[performance]\nconnection_timeout_seconds = 3\n")
    done = walake("extract", "--lake", str(tmp_path / "lake"), "--config",
                  str(tmp_path / "walake.toml"), "-q", check=False)

    assert done.returncode == 1
    assert "Could not start the MCP server 'false'" in done.stderr
    assert "walake diagnostics" in done.stderr and "Traceback" not in done.stderr


def test_server_command_is_never_run_by_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "walake.toml").write_text(
        f'[source]\ncommand = "echo hi; touch {marker}"\n'
        "[performance]\nconnection_timeout_seconds = 3\n")
    done = walake("extract", "--lake", str(tmp_path / "lake"), "--config",
                  str(tmp_path / "walake.toml"), "-q", check=False)

    assert done.returncode == 1 and not marker.exists()
    # `echo` got "hi;" and the rest as arguments, and its output is no JSON-RPC:
    # one warning line, no traceback quoting the stray line
    assert "Traceback" not in done.stderr
    assert "touch" not in done.stderr.split("Error:")[0]
