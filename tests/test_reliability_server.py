"""Server faults through a real server process (the demo server's fault knobs).

Each run pulls a small store over stdio with one fault injected; the lake must end
up equal to the store (at once when a retry helps, after a clean rerun otherwise),
and what the user sees is a sentence, never a traceback. The long version, with
random faults and SIGKILLs, is bench/chaos.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lakecheck import lake_counts, lock_store, store_counts, walake

from ingest.demo.store import generate_store
from ingest.sources.factory import demo_server_command
from ingest.sources.mcp import CallPolicy, McpSource
from ingest.sources.profiles import PROFILES

ZONE = ["--timezone", "Europe/London"]
ALL = ["--max-chats", "1000", "--max-messages", "1000000"]
CONFIG = """[source]
page_size = 20
{source}[extraction]
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
            timeout: float = 8, config: str = "") -> tuple[int, dict, str]:
    """`config` adds lines to the [source] section."""
    path = tmp_path / "walake.toml"
    path.write_text(CONFIG.format(timeout=timeout, source=config))
    done = walake("extract", "--store", str(store), "--lake", str(tmp_path / "lake"),
                  "--config", str(path), *ZONE, *ALL, "--json", "-q", *extra,
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


@pytest.mark.parametrize(("profile", "caught_by"), [
    ("lharries", "stops in the middle of a message"),  # no line end: asked again
    ("json", "ended short of what the server holds"),   # the end check's call
])
def test_a_page_cut_off_is_asked_again(store, tmp_path, profile, caught_by):
    code, summary, stderr = extract(store, tmp_path, "truncate_on_call=3",
                                    "--profile", profile)

    assert code == 0 and summary["status"] == "ok"
    assert caught_by in stderr
    assert lake_counts(tmp_path / "lake") == store_counts(store)


def test_a_cut_at_a_line_end_is_caught_when_short_pages_are_confirmed(store, tmp_path):
    """The lharries text cannot show a cut between two lines; the opt-in end check
    (ingest/pull.py `_end_holds`) can."""
    code, summary, stderr = extract(store, tmp_path, "cut_at_record_on_call=3",
                                    config="confirm_short_pages = true\n")

    assert code == 0 and summary["status"] == "ok"
    assert "ended short of what the server holds" in stderr
    assert lake_counts(tmp_path / "lake") == store_counts(store)


@pytest.mark.parametrize(("confirm", "per_walk"), [("false", 0), ("true", 1)])
def test_confirming_short_pages_costs_one_call_per_chat_walk(store, tmp_path, confirm,
                                                             per_walk):
    _, summary, _ = extract(store, tmp_path, "", "--batch-size", "10",
                            config=f"confirm_short_pages = {confirm}\n")
    chats = len(store_counts(store))
    # list_chats + per chat: 60 rows in windows of 20, where a full page hands its
    # oldest second to the next window, so 3 or 4 windows, the last one short
    windows = summary["calls"] - 1 - chats * per_walk
    assert chats * 3 <= windows <= chats * 4
    assert lake_counts(tmp_path / "lake") == store_counts(store)


def _one_chat_with_a_burst(tmp_path: Path, rows: int) -> Path:
    """One chat whose newest second holds `rows` messages, more than a page."""
    path = tmp_path / "burst.db"
    generate_store(path, chats=1, messages_per_chat=30, seed=5)
    stamp = "2030-01-01 12:00:00+00:00"
    with sqlite3.connect(path) as con:
        (jid,) = con.execute("select jid from chats where jid != 'status@broadcast' "
                             "limit 1").fetchone()
        con.executemany(
            "insert into messages (id, chat_jid, sender, content, timestamp, "
            "is_from_me, media_type) values (?, ?, 'x', ?, ?, 0, '')",
            [(f"B{i}", jid, f"burst {i}", stamp) for i in range(rows)])
    return path


def test_a_capped_page_of_one_second_cut_off_is_asked_again(tmp_path):
    """A second with more rows than a page is read in sub-pages; a short one is
    probed one row past its end (the profile confirms short pages)."""
    store = _one_chat_with_a_burst(tmp_path, 1100)
    # calls: list_chats, the first page (20 rows of one second), then that second
    # in pages of the profile's cap, 500: 500, 500, and the short one (100), which
    # is cut to 50
    code, summary, stderr = extract(store, tmp_path, "cut_at_record_on_call=5",
                                    "--profile", "json")

    assert code == 0 and summary["status"] == "ok"
    assert "ended short of what the server holds" in stderr
    assert lake_counts(tmp_path / "lake") == store_counts(store)


def test_a_page_the_server_could_not_query_is_asked_again(store, tmp_path):
    """Upstream answers no content at all when its query fails, as on a store the
    bridge keeps locked; that is not an empty chat."""
    copy = tmp_path / "messages.db"
    copy.write_bytes(store.read_bytes())
    policy = CallPolicy(timeout_seconds=20, retry_attempts=3, backoff_seconds=0.5)
    source = McpSource(demo_server_command(copy), PROFILES["lharries"],
                       ZoneInfo("Europe/London"), policy)

    async def pull_while_locked():
        await source.start()
        try:
            chat = (await source.fetch_chats())[0]
            # The demo server gives up on a lock after about 5.5 s, as upstream
            # does after its sqlite timeout; the second try finds the store free
            holder = lock_store(copy, 7)
            page = await source.fetch_page(chat, None, None, 1000)
            holder.wait(timeout=30)
            return chat, page
        finally:
            await source.close()

    chat, page = asyncio.run(pull_while_locked())
    assert source.retries >= 1
    assert len(page.rows) == store_counts(copy)[chat.chat_id]


def test_chats_the_server_could_not_list_are_a_warning_and_a_rerun_pulls_them(
        store, tmp_path):
    copy = tmp_path / "messages.db"
    copy.write_bytes(store.read_bytes())
    holder = lock_store(copy, 12)  # longer than the server waits for it
    code, summary, stderr = extract(copy, tmp_path, "")
    holder.wait(timeout=30)

    assert code == 0 and summary["messages"] == 0
    assert "the server listed no chats" in stderr
    assert extract(copy, tmp_path, "")[1]["messages"] == sum(store_counts(copy).values())


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
