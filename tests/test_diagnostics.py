"""`walake diagnostics` against a healthy and a broken server."""

from __future__ import annotations

import json
import sys

import pytest
from lakecheck import walake

from ingest.demo.store import generate_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("diag") / "messages.db"
    generate_store(path, chats=4, messages_per_chat=50)
    return path


def test_healthy_server_passes_every_check(store, tmp_path):
    done = walake("diagnostics", "--store", str(store), "--lake", str(tmp_path / "l"),
                  "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert all(c["ok"] for c in checks.values())
    assert {"server starts", "tool list_chats", "tool list_messages", "one small call",
            "lake writable", "free disk", "lake private"} <= set(checks)
    assert "4 chats listed" in checks["one small call"]["detail"]


def test_server_too_new_fails_with_the_remedy(store, tmp_path):
    done = walake("diagnostics", "--store", str(store), "--lake", str(tmp_path / "l"),
                  check=False, env={"WALAKE_DEMO_FAULTS": "validation_error=1"})
    assert done.returncode == 1
    assert "FAIL server answers" in done.stdout
    assert "pin the server's mcp to 1.6.0" in done.stdout


def test_a_tool_name_the_server_lacks_is_named_with_what_it_has(store, tmp_path):
    config = tmp_path / "walake.toml"
    config.write_text(
        '[source]\nlist_messages_tool = "get_chat_messages"\n'
        f'command = "{sys.executable}"\n'
        f'args = ["-m", "ingest.demo.server", "--store", "{store}"]\n'
    )
    done = walake("diagnostics", "--config", str(config), "--lake", str(tmp_path / "l"),
                  check=False)
    assert done.returncode == 1
    assert "FAIL tool get_chat_messages: missing; the server has get_chat, " in done.stdout
    assert "fix: choose the matching --profile" in done.stdout


def test_server_that_cannot_start_fails_the_first_check(tmp_path):
    config = tmp_path / "walake.toml"
    config.write_text('[source]\ncommand = "/nonexistent/whatsapp-mcp"\n')
    done = walake("diagnostics", "--config", str(config), "--lake", str(tmp_path / "l"),
                  check=False)
    assert done.returncode == 1
    assert "FAIL server starts: Could not start the MCP server '/nonexistent/whatsapp-mcp'" in (
        done.stdout)
    assert "fix: " in done.stdout


def test_unwritable_lake_fails(store, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    done = walake("diagnostics", "--store", str(store), "--lake", str(blocked / "lake"),
                  check=False)
    assert done.returncode == 1
    assert "FAIL lake writable" in done.stdout


def test_a_lake_that_lost_its_manifest_fails_with_the_restore_command(store, tmp_path):
    lake = tmp_path / "lake"
    walake("extract", "--source", "bridge", "--store", str(store), "--lake", str(lake),
           "--timezone", "Europe/London", "-q")
    ok = json.loads(walake("diagnostics", "--store", str(store), "--lake", str(lake),
                           "--json").stdout)
    assert next(c for c in ok if c["name"] == "lake manifest")["ok"]
    (lake / "manifest.json").unlink()

    done = walake("diagnostics", "--store", str(store), "--lake", str(lake),
                  check=False)

    assert done.returncode == 1
    assert "FAIL lake manifest" in done.stdout
    assert f"cp {lake}/manifest.json.bak {lake}/manifest.json" in done.stdout


def test_a_bridge_source_is_checked_from_the_config(store, tmp_path):
    config = tmp_path / "walake.toml"
    config.write_text(f'[source]\nkind = "bridge"\nstore = "{store}"\n')
    done = walake("diagnostics", "--config", str(config), "--lake", str(tmp_path / "l"))

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok   bridge store: {store}" in done.stdout
    assert "chats with messages, listed in" in done.stdout
    assert "server starts" not in done.stdout


def test_a_bridge_source_that_is_not_a_store_fails_with_the_fix(tmp_path):
    bogus = tmp_path / "messages.db"
    bogus.write_text("not sqlite")
    done = walake("diagnostics", "--source", "bridge", "--store", str(bogus),
                  "--lake", str(tmp_path / "l"), check=False)

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "is not a whatsapp-bridge store (not a SQLite database)" in done.stdout
    assert "fix: fix source.store in walake.toml, or pass --store PATH" in done.stdout
