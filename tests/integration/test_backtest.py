"""Backtest on a small slice of the real git-activity sessions: structure and sanity relations."""

import csv
import gzip
import json
import os
import pathlib
import subprocess

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import backtest as bt
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

pytest.importorskip("prophet")
pytestmark = pytest.mark.prophet
ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "git-activity-datadog" / "sessions.csv.gz"
USERS = ["u0001", "u0002", "u0003", "u0004", "u0005"]
RISKS = [0.0, 0.1, 0.3, 0.5, 0.8]

needs_data = pytest.mark.skipif(not DATA.exists(), reason="git-activity data set not present")


@pytest.fixture(scope="module")
def slice_csv(tmp_path_factory):
    """The first five users of the data set, as a gzipped git-activity sessions file."""
    out = tmp_path_factory.mktemp("bt") / "slice.csv.gz"
    with gzip.open(DATA, "rt", newline="") as src, gzip.open(out, "wt", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        for row in reader:
            if row["user"] in USERS:
                writer.writerow(row)
    return out


@pytest.fixture(scope="module")
def report(slice_csv):
    rows = bt.load_history(str(slice_csv))
    return bt.run_backtest(rows, weeks=2, risks=RISKS, workers=2)


@needs_data
def test_structure(report):
    assert set(report["policies"]) == {"shadowdesk", "always_on", "on_connect", "schedule", "weekday_window"}
    for name, pol in report["policies"].items():
        for key in ("hit_rate", "warm_hours", "warm_share", "idle_warm_hours", "cost", "logins", "hits"):
            assert key in pol, (name, key)
        assert 0 <= pol["hit_rate"] <= 1 and 0 <= pol["warm_share"] <= 1
        assert pol["idle_warm_hours"] <= pol["warm_hours"]
    assert len(report["shadowdesk_curve"]) >= 5
    assert {"risk", "hit_rate", "warm_hours", "warm_share"} <= set(report["shadowdesk_curve"][0])
    assert report["users"] == 5 and report["period"]["weeks"] == 2 and report["period"]["refits"] == 2
    assert report["forecasts"]["error"] == 0 and report["forecasts"]["prophet"] > 0
    assert report["policies"]["shadowdesk"]["policy"] == "arrival"
    assert report["shadowdesk_alt_curve"]["policy"] == "occupancy"
    assert len(report["shadowdesk_alt_curve"]["curve"]) == len(report["shadowdesk_curve"])
    assert set(report["curve_at_baseline_share"]) >= {"schedule", "schedule+release", "weekday_window"}
    json.dumps(report)


@needs_data
def test_sanity_relations(report):
    pol = report["policies"]
    assert pol["always_on"]["warm_share"] == 1 and pol["always_on"]["hit_rate"] == 1
    assert pol["always_on"]["warm_hours"] == pytest.approx(5 * 14 * 24)
    assert pol["on_connect"]["hit_rate"] == 0  # one session per day: nobody is already connected
    assert pol["on_connect"]["idle_warm_hours"] == 0
    logins = pol["always_on"]["logins"]
    assert logins > 10 and all(p["logins"] == logins for p in pol.values())
    for name in ("schedule", "weekday_window", "shadowdesk"):
        assert pol["on_connect"]["warm_hours"] <= pol[name]["warm_hours"] <= pol["always_on"]["warm_hours"]
    assert pol["always_on"]["cost"] == pytest.approx(pol["always_on"]["warm_hours"], rel=1e-3)  # flat price 1
    curve = report["shadowdesk_curve"]
    warm = [c["warm_hours"] for c in curve]
    hits = [c["hit_rate"] for c in curve]
    assert warm[0] >= warm[-1] and hits[0] >= hits[-1]
    # monotone-ish: bolder risk never costs noticeably more warm hours than the previous setting
    assert all(b <= a * 1.02 + 1 for a, b in zip(warm, warm[1:]))
    # the product is useful at all: it catches most logins with far fewer warm hours than always-on
    assert pol["shadowdesk"]["hit_rate"] > 0.5 and pol["shadowdesk"]["warm_share"] < 0.7


def test_generic_csv_and_errors(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("user,start,end,tz_offset_min\nann,2026-01-05T08:00:00Z,2026-01-05T16:00:00Z,0\n"
                    "ann,2026-03-02T08:00:00Z,2026-03-02T16:00:00Z,0\n")
    rows = bt.load_history(str(path))
    assert len(rows) == 2 and rows[0]["user"] == "ann"
    with pytest.raises(InvalidInput):
        bt.run_backtest(rows[1:], weeks=1)  # nothing before the scored period
    bad = tmp_path / "bad.csv"
    bad.write_text("who,when\nx,y\n")
    with pytest.raises(InvalidInput):
        bt.load_history(str(bad))


@needs_data
@pytest.mark.playbook
def test_playbook(slice_csv, tmp_path):
    out = tmp_path / "report.json"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"))
    proc = subprocess.run(
        ["ansible-playbook", "shadowdesk.vdi.backtest", "-e", "shadowdesk_history=%s" % slice_csv,
         "-e", "shadowdesk_report=%s" % out, "-e", "shadowdesk_backtest_weeks=1"],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["period"]["weeks"] == 1
    assert report["policies"]["always_on"]["hit_rate"] == 1
    assert "schedule: hit rate" in proc.stdout
