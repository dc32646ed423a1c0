"""playbooks/report.yml in a real ansible-playbook run, and its page rendered by a real headless Chromium.

The data: a plan built by the planner from tests/plan_data.py (alice and bob planned warm/full from 07:49 UTC on
2026-11-23, carol left alone), its forecasts, and three actual sessions in the SQLite store: alice logs in at 08:00
(hit), bob at 07:30 (before his wake: miss), carol at 10:00 (no plan: miss).
"""

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_schema, plans
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.tests import plan_data
from integration.test_allocation_plan_action import ROOT, run_playbook

pytestmark = pytest.mark.playbook
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_SIZE = (1000, 1500)


@pytest.fixture
def data_dir(tmp_path):
    directory = tmp_path / "data"
    inputs = plan_data.inputs()
    plan = json.loads(json.dumps(plans.build_plan(**inputs), default=str))
    plan_schema.write_plan(plan, str(directory / "plans" / "latest.json"))
    (directory / "forecasts").mkdir(parents=True)
    (directory / "forecasts" / "latest.json").write_text(json.dumps(inputs["forecasts"]))
    with HistoryStore(directory / "history.sqlite3") as store:
        store.add_sessions([
            {"user": "alice", "desktop": "desk-alice", "start": "2026-11-23T08:00:00Z", "end": "2026-11-23T17:00:00Z"},
            {"user": "bob", "desktop": "desk-bob", "start": "2026-11-23T07:30:00Z", "end": "2026-11-23T12:00:00Z"},
            {"user": "carol", "desktop": "desk-carol", "start": "2026-11-23T10:00:00Z", "end": "2026-11-23T11:00:00Z"},
            {"user": "alice", "desktop": "desk-alice", "start": "2026-11-20T08:00:00Z", "end": "2026-11-20T09:00:00Z"},
        ], "csv")
    return directory


def chromium(tmp_path, *args):
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--disable-sync", "--user-data-dir=%s" % profile] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def test_report_playbook_writes_a_self_contained_page_that_chromium_renders(tmp_path, data_dir):
    play = ROOT / "playbooks" / "report.yml"
    rc, results, log = run_playbook(tmp_path, play, extra=["-e", "shadowdesk_data_dir=%s" % data_dir])
    assert rc == 0, log
    report = next(r for r in results if "pool" in r)
    assert report["changed"] is True
    pool = report["pool"]
    assert (pool["users"], pool["sessions"], pool["hits"], pool["misses"]) == (3, 3, 1, 2)  # 11-20 is outside
    assert pool["always_on_hours"] == 72.0 and pool["fixed_hours"] == 36.0  # a Monday: 12 h x 3 users
    assert 0 < pool["warm_hours"] < pool["fixed_hours"]
    page = data_dir / "reports" / "report.html"
    text = page.read_text()
    assert "http:" not in text and "https:" not in text and "src=" not in text  # nothing to fetch: opens offline
    assert text.count("<svg") == 4
    # idempotent: the same inputs give the same page
    rc, results, log = run_playbook(tmp_path, play, extra=["-e", "shadowdesk_data_dir=%s" % data_dir])
    assert rc == 0 and next(r for r in results if "pool" in r)["changed"] is False, log

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert dom.stdout.count("<svg") == 4 and dom.stdout.count('class="forecast"') == 2  # carol has no forecast
    assert dom.stdout.count('class="hit"') == 1 and dom.stdout.count('class="miss"') == 2

    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, "--screenshot=%s" % shot, "--window-size=%d,%d" % SCREENSHOT_SIZE,
                    "--hide-scrollbars", page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr
    image = pytest.importorskip("PIL.Image").open(shot).convert("RGB")
    counts = {}
    for pixel in image.getdata():
        counts[pixel] = counts.get(pixel, 0) + 1
    # The plots are drawn: the stage colours, the forecast line and the hit/miss marks are on screen.
    for name, rgb in (("full", (0x2e, 0x8b, 0x57)), ("warm", (0xf0, 0xa7, 0x3a)), ("forecast", (0x09, 0x69, 0xda)),
                      ("miss", (0xcf, 0x22, 0x2e)), ("shadow", (0xd9, 0xdd, 0xe3))):
        assert counts.get(rgb, 0) > 50, (name, counts.get(rgb, 0))
    if os.environ.get("SD_KEEP_REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["SD_KEEP_REPORT_SCREENSHOT"])
