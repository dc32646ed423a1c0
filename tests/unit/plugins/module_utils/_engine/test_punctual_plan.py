"""Issue 13 on the plan engine: a punctual user's warm window is tight, their predicted login is their own."""

import datetime as dt

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrivals, plan_schema, plans
from ansible_collections.shadowdesk.vdi.tests import punctual_user as pu

SLOT = 15


def occupancy_forecast(history, start, days=7):
    """What Prophet would say about this user: their mean occupancy per weekday slot (no model needed here)."""
    p = []
    for i in range(days * 24 * 60 // SLOT):
        moment = start + dt.timedelta(minutes=i * SLOT)
        same = [r for r in history if r["start"].weekday() == moment.weekday()]
        on = sum(1 for r in same if r["start"].time() <= moment.time() < r["end"].time())
        p.append(round(on / float(len(same)), 4) if same else 0.0)
    return {"user": "punctual", "method": "prophet", "reason": "", "slot_minutes": SLOT,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "p": p, "p_low": p, "p_high": p,
            "history": {"sessions": len(history)}}


def plan_for(history, now=pu.NOW, pool=None):
    start = now.replace(minute=0)
    forecast = occupancy_forecast(history, start)
    forecast["arrivals"] = arrivals.weekday_profiles(history, now, 0, pool_rows_by_user=pool)
    desktops = {"punctual": {"desktop": "desk-punctual", "max_vcpus": 4, "max_memory_mib": 8192}}
    nodes = [{"name": "n1", "vcpus": 16, "memory_mib": 65536}]
    plan = plans.build_plan([forecast], desktops, nodes, now=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    plan_schema.validate_plan(plan)
    return plan["users"]["punctual"]


def test_punctual_user_is_woken_shortly_before_their_usual_login():
    history, upcoming = pu.sessions()
    user = plan_for(history)
    wake = pu._parse(user["steps"][0]["at"])
    login = pu._parse(user["predicted_login"])
    assert wake.date() == login.date() == pu.PLANNED
    # no earlier than 30 min before the earliest arrival of the last 4 weeks
    assert pu.minutes_of_day(wake) >= pu.earliest_recent_arrival(history) - 30, user["steps"]
    # the predicted login is the model's own estimate: within 15 min of the user's median arrival
    assert abs(pu.minutes_of_day(login) - pu.median_arrival(history)) <= 15, user["predicted_login"]
    idle, missed = pu.idle_warm_hours_per_working_day(user, upcoming)
    assert idle <= 0.5 and not missed, (idle, missed, user["sessions"])
    # every weekday of the week is planned, the weekend is not
    assert sorted({pu._parse(s["wake"]).weekday() for s in user["sessions"]}) == [0, 1, 2, 3, 4]
    # and the plan says why the window is that narrow
    why = user["arrival"]
    assert why["samples"] >= 30 and why["spread_minutes"] < 10 and why["bandwidth_minutes"] < 10
    assert why["pool_weight"] < 0.05 and "median login" in why["explanation"]


def test_irregular_user_gets_a_wider_window_than_a_punctual_one():
    history, _upcoming = pu.sessions()
    irregular = []
    for k, row in enumerate(history):  # same days, arrivals spread over 07:00-11:00
        shift = dt.timedelta(minutes=(k * 97) % 240 - 60)
        irregular.append(dict(row, start=row["start"] + shift, end=row["end"] + shift))
    tight, wide = plan_for(history)["arrival"], plan_for(irregular)["arrival"]
    assert wide["spread_minutes"] > 4 * tight["spread_minutes"]
    assert wide["window_minutes"] > 2 * tight["window_minutes"]
    assert wide["before_login_minutes"] > tight["before_login_minutes"]


def test_a_new_user_leans_on_the_pool():
    history, _upcoming = pu.sessions()
    pool = {"punctual": history}
    newcomer = [dict(r, user="new") for r in history[-2:]]   # two days of history
    profile = arrivals.weekday_profiles(newcomer, pu.NOW, 0, pool_rows_by_user=pool)["weekdays"]["0"]
    known = arrivals.weekday_profiles(history, pu.NOW, 0)["weekdays"]["0"]
    assert profile["samples"] == 2 and profile["bandwidth_minutes"] > 3 * known["bandwidth_minutes"]
    assert profile["pool_weight"] > 0.3 > 0.05 > known["pool_weight"]


def test_the_next_login_is_never_in_the_past():
    history, _upcoming = pu.sessions()
    # planned on Monday at 12:00, after this morning's arrival: the next login is Tuesday's
    noon = dt.datetime.combine(pu.PLANNED, dt.time(12, 0), tzinfo=dt.timezone.utc)
    user = plan_for(history, now=noon)
    login = pu._parse(user["predicted_login"])
    assert login > noon and login.date() == pu.PLANNED + dt.timedelta(days=1)
    assert all(pu._parse(s["release"]) > noon for s in user["sessions"])
