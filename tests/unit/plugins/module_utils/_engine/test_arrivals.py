"""Empirical arrival profiles (pure): local days, come probability with shrinkage, pmf, plans helper."""

import datetime as dt

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import warm_windows as ww
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrivals as ar
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = dt.timezone.utc


def is_warm(windows, at):
    """Test helper: ``at`` falls inside one of ``windows`` (start inclusive, end exclusive)."""
    t = _time.to_utc(at)
    return any(_time.to_utc(w["start"]) <= t < _time.to_utc(w["end"]) for w in windows)


def session(day, hour, minutes=480, offset=60):
    start = dt.datetime(day.year, day.month, day.day, tzinfo=UTC) + dt.timedelta(hours=hour, minutes=-offset)
    return {"user": "ann", "start": start, "end": start + dt.timedelta(minutes=minutes), "tz_offset_min": offset}


def history(weeks=8, first=dt.date(2026, 3, 2), hour=9, weekdays=(0, 1, 2, 3, 4)):
    """``ann`` logs in at ``hour`` local (UTC+1) on ``weekdays`` for ``weeks`` weeks from Monday ``first``."""
    rows = []
    for k in range(weeks * 7):
        day = first + dt.timedelta(days=k)
        if day.weekday() in weekdays:
            rows.append(session(day, hour))
    return rows


def test_user_days_are_local_and_cut_at_four():
    rows = [session(dt.date(2026, 3, 2), 9), session(dt.date(2026, 3, 2), 14, 30),
            session(dt.date(2026, 3, 3), 2, 30)]   # 02:00 local belongs to the day before
    days = ar.user_days(rows, day_cut_minutes=240)
    assert [(entry[0].isoformat(), entry[1]) for entry in days] == [("2026-03-02", 300.0)]
    assert days[0][2] == 480 + 30 + 30


def test_profile_learns_the_weekday_pattern_and_shrinks_to_the_pool():
    ann = history(weekdays=(0, 1, 2))               # Mon-Wed only
    bob = [dict(r, user="bob") for r in history(hour=13)]
    model = ar.ArrivalModel({"ann": ann, "bob": bob})
    day = dt.date(2026, 4, 27)                      # a Monday after the 8 weeks
    mon = model.profile("ann", day)
    thu = model.profile("ann", day + dt.timedelta(days=3))
    sat = model.profile("ann", day + dt.timedelta(days=5))
    assert mon["n"] == 8 and thu["n"] == 0
    assert mon["q"] > 0.85 > thu["q"] and thu["q"] < 0.5 and sat["q"] < 0.1
    # pmf peaks at 09:00 local = 5 h after the 04:00 cut (slot 20), with a small bump from the pool at 13:00
    assert max(range(96), key=lambda i: mon["pmf"][i]) == 20 and sum(mon["pmf"]) == pytest.approx(1.0)
    assert mon["pmf"][36] > mon["pmf"][60]
    assert mon["mean_minutes"] == pytest.approx(480)
    # nobody known: the pool's come rate and pmf
    new = model.profile("zed", day)
    assert new["n"] == 0 and 0 < new["q"] < 1
    # nothing from the planned day or later is used
    later = model.profile("ann", dt.date(2026, 3, 2))
    assert later["n"] == 0 and later["q"] == model.pool(dt.date(2026, 3, 2))[False][0]


def test_weekday_profiles_drive_warm_windows():
    now = dt.datetime(2026, 4, 27, 0, 0, tzinfo=UTC)
    arrivals = ar.weekday_profiles(history(), now, 60)
    assert sorted(arrivals["weekdays"]) == [str(d) for d in range(7)] and arrivals["offset_min"] == 60
    forecast = {"user": "ann", "slot_minutes": 15, "start": "2026-04-27T00:00:00Z", "p": [0.0] * 96 * 7,
                "p_high": [0.0] * 96 * 7}
    wins = ww.warm_windows(forecast, risk=0.3, arrivals=arrivals)
    # Monday 09:00 local = 08:00 UTC is warm, the weekend is not
    assert is_warm(wins, "2026-04-27T08:00:00Z") and is_warm(wins, "2026-05-01T08:00:00Z")
    assert not is_warm(wins, "2026-05-02T08:00:00Z") and not is_warm(wins, "2026-04-27T20:00:00Z")


def test_a_misspelt_option_is_refused_not_run_as_the_defaults():
    with pytest.raises(InvalidInput, match="k_pool_pseudo"):
        ar.ArrivalModel({"ann": history()}, {"k_pool_pseudo": 8})
    assert ar.ArrivalModel({"ann": history()}, {"k_pool": 8}).opts["k_pool"] == 8
