"""Issue 13 end to end: the punctual user's history imported as CSV and run through ``forecast.yml`` with the
defaults (real ansible-playbook, real Prophet, real SQLite); and the next predicted login on the real wtmp of
``../shared/data/logins-ua-wtmp`` is never in the past."""

import datetime as dt
import json
import pathlib

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast_round, importers, plans
from ansible_collections.shadowdesk.vdi.tests import punctual_user as pu
from test_allocation_plan_action import ROOT, run_playbook

WTMP = pathlib.Path(ROOT).parent / "shared" / "data" / "logins-ua-wtmp" / "wtmp"
UTC = dt.timezone.utc


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.playbook
@pytest.mark.prophet
def test_punctual_user_through_the_forecast_playbook(tmp_path):
    history, upcoming = pu.sessions()
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("user,start,end,desktop\n" + "".join(
        "%s,%s,%s,%s\n" % (r["user"], iso(r["start"]), iso(r["end"]), r["desktop"]) for r in history))
    data_dir = tmp_path / "data"
    site = {"forecast_data_dir": str(data_dir), "forecast_now": iso(pu.NOW),
            "forecast_import_sources": [{"kind": "csv", "src": str(csv_path)}],
            "forecast_horizon_hours": 120,
            "forecast_desktops": {"punctual": {"desktop": "desk-punctual", "max_vcpus": 4, "max_memory_mib": 8192}},
            "forecast_nodes": [{"name": "n1", "vcpus": 16, "memory_mib": 65536}]}
    (tmp_path / "site.json").write_text(json.dumps(site))
    rc, _results, log = run_playbook(tmp_path, ROOT / "playbooks" / "forecast.yml",
                                     ["-e", "@%s" % (tmp_path / "site.json")])
    assert rc == 0, log[-4000:]
    user = json.loads((data_dir / "plans" / "latest.json").read_text())["users"]["punctual"]
    assert user["method"] == "prophet", user
    wake, login = pu._parse(user["steps"][0]["at"]), pu._parse(user["predicted_login"])
    assert wake.date() == login.date() == pu.PLANNED
    assert pu.minutes_of_day(wake) >= pu.earliest_recent_arrival(history) - 30, user["steps"][:3]
    assert abs(pu.minutes_of_day(login) - pu.median_arrival(history)) <= 15, user["predicted_login"]
    idle, missed = pu.idle_warm_hours_per_working_day(user, upcoming)
    assert idle <= 0.5 and not missed, (idle, missed, user["sessions"])
    # the summary says why the window is that narrow, and shows the next login
    assert "median login" in log and "predicted login %s" % user["predicted_login"] in log


@pytest.mark.prophet
@pytest.mark.skipif(not WTMP.is_file(), reason="shared data set %s is absent (real wtmp sample)" % WTMP)
def test_wtmp_plan_shows_the_next_login_not_a_past_one():
    now = dt.datetime(2019, 6, 9, 21, 0, tzinfo=UTC)
    rows = [r for r in importers.get("wtmp")(str(WTMP))[0] if r["start"] < now]
    by_user = {}
    for row in rows:
        by_user.setdefault(row["user"], []).append(row)
    forecasts, errors = forecast_round.forecasts_for(by_user, now, options={"horizon_hours": 48}, engine="serial")
    assert not errors and all(f["arrivals"]["weekdays"] for f in forecasts)
    desktops = {f["user"]: {"desktop": "desk-" + f["user"], "max_vcpus": 2, "max_memory_mib": 4096}
                for f in forecasts}
    plan = plans.build_plan(forecasts, desktops, [{"name": "n1", "vcpus": 512, "memory_mib": 2 ** 20}],
                            now=iso(now))
    planned = {u: e for u, e in plan["users"].items() if e["predicted_login"]}
    assert planned, "some wtmp users are predicted to log in within 48 h"
    for user, entry in planned.items():
        assert _time.to_utc(entry["predicted_login"]) >= now, (user, entry["predicted_login"])
        assert entry["arrival"]["explanation"], user
