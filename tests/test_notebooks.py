"""The marimo notebooks: run headless on a small lake, served to headless Chromium."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lakecheck import free_port, wait_for_url
from test_monitor_lake import HOT_TEXT, WARM_TEXT, make_monitored_lake

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def run_notebook(name: str, lake: Path, monkeypatch) -> tuple[list[str], dict]:
    """Run every cell as `python notebooks/NAME.py` would: the outputs' HTML, defs."""
    monkeypatch.setenv("WALAKE_LAKE", str(lake))
    path = NOTEBOOKS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"nb_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outputs, defs = module.app.run()
    return [getattr(o, "text", "") or "" for o in outputs], dict(defs)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return make_monitored_lake(tmp_path_factory.mktemp("nb") / "lake")


def test_monitor_notebook_shows_alerts_activity_and_health(lake, monkeypatch):
    html, defs = run_notebook("monitor", lake, monkeypatch)

    assert sorted(defs["feed"]["excerpt"]) == sorted([HOT_TEXT, WARM_TEXT])
    assert defs["totals"]["alerts"] == 2
    assert defs["per_hour"]["messages"].sum() == 7
    assert dict(defs["chats"].select("chat", "opportunities").iter_rows()) == {
        "Chat One": 2, "Chat Two": 2,  # an old deal to sell counts too
    }
    assert dict(defs["categories"].iter_rows()) == {
        "business": 3, "services": 3, "urgent": 2, "products": 1,
    }
    assert defs["health"]["last_batch"]["rows"] == 4
    assert set(defs["lag"]["chat"]) == {"Chat One", "Chat Two"}

    page = "\n".join(html)
    assert "<strong>2 alerts</strong> in the lake" in page
    assert "Urgent: looking for investment in our startup, call me asap" in page
    assert "Monitor stopped: 12 ticks, 4 new messages, 2 alerts, 1 error;" in page
    assert "did not answer" in page


def test_explore_notebook_filters_scores_and_keywords(lake, monkeypatch):
    html, defs = run_notebook("explore", lake, monkeypatch)

    assert defs["totals"] == {"messages": 7, "opportunities": 4, "chats": 2}
    assert len(defs["found"]) == 7
    assert defs["scores"]["messages"].sum() == 7
    assert dict(defs["hits"].iter_rows())["asap"] == 3  # old, new and mine
    assert set(defs["by_day"]["category"]) == {"business", "products", "services",
                                               "urgent"}
    assert "<strong>7 messages</strong> in 2 chats match" in "\n".join(html)


@pytest.mark.parametrize("name", ["monitor", "explore"])
def test_missing_or_empty_lake_says_what_to_run(name, tmp_path, monkeypatch):
    html, defs = run_notebook(name, tmp_path / "nolake", monkeypatch)
    assert "con" not in defs
    assert "Fill one with <code>walake extract</code>" in "\n".join(html)

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "manifest.json").write_text('{"version": 1}')
    html, defs = run_notebook(name, tmp_path / "empty", monkeypatch)
    assert "has no messages yet. Run <code>walake extract</code>" in "\n".join(html)


# The monitor notebook in a real browser


class DevTools:
    """The few DevTools protocol calls the test needs, over the page's websocket."""

    def __init__(self, ws) -> None:  # noqa: ANN001
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method,
                                 "params": params}))
        while True:
            answer = json.loads(self.ws.recv(timeout=30))
            if answer.get("id") == self.next_id:
                return answer.get("result", {})

    def text(self) -> str:
        found = self.call("Runtime.evaluate", expression="document.body.innerText",
                          returnByValue=True)
        return found.get("result", {}).get("value") or ""


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at "
                    "/usr/bin/chromium (apt-get install chromium; CI installs it)")
def test_served_monitor_notebook_renders_the_alert_feed(lake, tmp_path):
    from websockets.sync.client import connect

    app_port, debug_port = free_port(), free_port()
    env = {**os.environ, "WALAKE_LAKE": str(lake),
           "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = subprocess.Popen(
        [sys.executable, "-m", "marimo", "run", str(NOTEBOOKS / "monitor.py"),
         "--headless", "--host", "127.0.0.1", "--port", str(app_port), "--no-token"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    browser = subprocess.Popen(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--remote-debugging-port={debug_port}",
         f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,2000",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_url(f"http://127.0.0.1:{app_port}/health", 30)
        targets = json.loads(wait_for_url(f"http://127.0.0.1:{debug_port}/json", 20))
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            tools = DevTools(ws)
            tools.call("Page.enable")
            tools.call("Page.navigate", url=f"http://127.0.0.1:{app_port}/")

            # The app renders once its kernel has run the cells over the websocket
            deadline, text = time.monotonic() + 30, ""
            while "Ingest health" not in text and time.monotonic() < deadline:
                time.sleep(0.5)
                text = tools.text()
            time.sleep(1)
            text = tools.text()
            shot = tools.call("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        (tmp_path / "monitor.png").write_bytes(png)
    finally:
        browser.terminate()
        server.terminate()
        browser.wait(timeout=10)
        server.wait(timeout=10)

    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert "walake monitor" in text
    assert "2 alerts in the lake" in text
    assert "Urgent: looking for investment in our startup, call me asap" in text
    assert "Can you recommend someone? We need help with the business plan" in text
    assert "Last batch b00000002: 4 messages from mcp" in text
    assert "Traceback" not in text
