"""Pure tests of the warm-window policy."""

import datetime as dt
import math

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import warm_windows as ww


ISO = "%Y-%m-%dT%H:%M:%SZ"


def is_warm(windows, at):
    """Test helper: ``at`` falls inside one of ``windows`` (start inclusive, end exclusive)."""
    t = _time.to_utc(at)
    return any(_time.to_utc(w["start"]) <= t < _time.to_utc(w["end"]) for w in windows)


def day_curve(slot=15):
    """One day at 15-min slots: nobody before 08:00, connected 09:00-17:00, nobody after 18:00."""
    p = []
    for i in range(24 * 60 // slot):
        h = i * slot / 60.0
        if 9 <= h < 17:
            p.append(0.9)
        elif 8 <= h < 9 or 17 <= h < 18:
            p.append(0.3)
        else:
            p.append(0.0)
    return p


def forecast(p, hi=None, slot=15, start="2026-11-23T00:00:00Z"):
    return {"user": "alice", "slot_minutes": slot, "start": start, "p": p, "p_low": p,
            "p_high": hi if hi is not None else p}


def test_threshold_is_monotone_in_risk():
    values = [ww.risk_threshold(r / 10.0) for r in range(11)]
    assert values == sorted(values)
    assert ww.risk_threshold(-1) == ww.risk_threshold(0)
    assert ww.risk_threshold(2) == ww.risk_threshold(1)


def test_workday_window_with_lead_and_release():
    wins = ww.warm_windows(forecast(day_curve()), risk=0.3, lead_minutes=15)
    assert len(wins) == 1
    # warm from the shoulder at 08:00 minus the 15 min lead, released after the 17:00-18:00 shoulder
    assert wins[0]["start"] == "2026-11-23T07:45:00Z"
    assert wins[0]["end"] == "2026-11-23T18:00:00Z"
    assert wins[0]["peak"] == 0.9


def test_bold_risk_keeps_only_the_arrival_shoulder():
    # threshold 0.5: the 08:00 shoulder (0.3) is kept as the arrival edge, the evening one (falling) is released
    wins = ww.warm_windows(forecast(day_curve()), risk=1.0, lead_minutes=0)
    assert [(w["start"], w["end"]) for w in wins] == [("2026-11-23T08:00:00Z", "2026-11-23T17:00:00Z")]
    wins = ww.warm_windows(forecast(day_curve()), risk=1.0, lead_minutes=0, edge_fraction=1.0)
    assert [(w["start"], w["end"]) for w in wins] == [("2026-11-23T09:00:00Z", "2026-11-23T17:00:00Z")]


def test_upper_band_widens_a_cautious_window():
    p = [0.0] * 96
    hi = [0.0] * 96
    for i in range(36, 68):
        p[i] = 0.6
    for i in range(28, 36):   # uncertain morning: point forecast 0, band up to 0.3
        hi[i] = 0.3
    for i in range(36, 68):
        hi[i] = 0.8
    cautious = ww.warm_slots(p, hi, 15, risk=0.1, lead_minutes=0)
    bold = ww.warm_slots(p, hi, 15, risk=0.9, lead_minutes=0)
    assert cautious[0][0] == 28 and bold[0][0] == 36


def test_arrival_edge_extends_over_the_rising_flank():
    p = [0.0] * 20 + [0.05, 0.1, 0.15] + [0.6] * 10 + [0.0] * 20
    thr = ww.risk_threshold(0.5)
    assert 0.1 < thr < 0.2
    (a, b), = ww.warm_slots(p, p, 15, risk=0.5, lead_minutes=0, min_window_minutes=0)
    # 0.15 is above the threshold; 0.1 is on the rising flank above half of it; 0.05 is not
    assert (a, b) == (21, 33)


def test_merge_short_gaps_and_min_length():
    p = [0.0] * 8 + [0.9] * 4 + [0.0] * 2 + [0.9] * 4 + [0.0] * 20 + [0.9] + [0.0] * 8
    runs = ww.warm_slots(p, p, 15, risk=0.5, lead_minutes=0, merge_gap_minutes=60, min_window_minutes=60,
                         edge_fraction=1.0)
    assert runs == [(8, 18), (38, 42)]


def test_lead_can_start_before_the_forecast():
    p = [0.9] * 4 + [0.0] * 10
    assert ww.warm_slots(p, p, 15, risk=0.5, lead_minutes=30)[0][0] == -2


def test_nothing_to_warm():
    assert ww.warm_windows(forecast([0.0] * 96), risk=0.3) == []


def test_is_warm_and_errors():
    wins = ww.warm_windows(forecast(day_curve()), risk=0.3)
    assert is_warm(wins, "2026-11-23T12:00:00Z")
    assert not is_warm(wins, "2026-11-23T03:00:00Z")
    with pytest.raises(ValueError):
        ww.warm_slots([0.1], [0.1, 0.2], 15)
    with pytest.raises(ValueError):
        ww.warm_slots([0.1], [0.1], 0)


# ------------------------------------------------------------------------------------------- arrival policy

def normal_pmf(mode_slot, sd_slots, n=96):
    """Discretised normal arrival pmf over a local day of ``n`` slots."""
    raw = [math.exp(-0.5 * ((i - mode_slot) / sd_slots) ** 2) for i in range(n)]
    total = sum(raw)
    return [x / total for x in raw]


def test_hazard_is_the_conditional_login_probability():
    # always comes, uniform over 4 slots: 1/4, then 1/3 of the rest, 1/2, certain in the last slot
    assert ww.arrival_hazard(1.0, [0.25] * 4) == pytest.approx([0.25, 1 / 3.0, 0.5, 1.0])
    # comes only half of the days: late slots stay uncertain because the user may not come at all
    half = ww.arrival_hazard(0.5, [0.25] * 4)
    assert half == pytest.approx([0.125, 0.125 / 0.875, 0.125 / 0.75, 0.125 / 0.625])
    assert ww.arrival_hazard(0.0, [0.25] * 4) == [0.0] * 4


def test_hazard_threshold_is_monotone_and_clamped():
    values = [ww.hazard_threshold(r / 10.0) for r in range(11)]
    assert values == sorted(values) and values[0] == ww.HAZARD_MIN
    assert values[-1] == pytest.approx(ww.HAZARD_MAX)
    assert ww.hazard_threshold(-1) == ww.hazard_threshold(0) and ww.hazard_threshold(3) == ww.hazard_threshold(1)


def test_arrival_window_brackets_the_usual_arrival():
    pmf = normal_pmf(20, 4)  # arrival 5 h after the 04:00 cut = 09:00 local, SD 1 h
    runs = ww.arrival_slots(0.9, pmf, 15, risk=0.3, lead_minutes=0)
    assert len(runs) == 1
    a, b = runs[0]
    assert a < 20 < b
    # it starts in the lower tail of the arrival time and is released once the user has most likely not come
    assert sum(pmf[:a]) < 0.2 and b < 96
    # cautious settings warm a superset of bold ones
    wide = ww.arrival_slots(0.9, pmf, 15, risk=0.0, lead_minutes=0)
    narrow = ww.arrival_slots(0.9, pmf, 15, risk=0.8, lead_minutes=0)
    assert wide[0][0] <= a and wide[-1][1] >= b
    assert not narrow or (narrow[0][0] >= a and narrow[-1][1] <= b)


def test_rare_days_are_not_warmed_and_lead_moves_the_start():
    pmf = normal_pmf(20, 4)
    plain = ww.arrival_slots(0.9, pmf, 15, risk=0.3, lead_minutes=0)
    rare = ww.arrival_slots(0.02, pmf, 15, risk=0.3, lead_minutes=0)
    # a user who seldom comes on this weekday gets only the core of the arrival time, or nothing at a bolder risk
    assert rare and rare[0][1] - rare[0][0] < (plain[0][1] - plain[0][0]) / 2
    assert ww.arrival_slots(0.02, pmf, 15, risk=0.6, lead_minutes=0) == []
    assert ww.arrival_slots(0.0, pmf, 15, risk=0.0, lead_minutes=0) == []
    led = ww.arrival_slots(0.9, pmf, 15, risk=0.3, lead_minutes=30)
    assert [(a - 2, b) for a, b in plain] == led


def test_prophet_arrival_reads_the_rising_flank():
    p = [0.0] * 16 + [0.2, 0.4, 0.6] + [0.6] * 29 + [0.0] * 48   # 32 slots of 0.2..0.6 occupancy
    q, f = ww.prophet_arrival(p, 15, mean_minutes=480)
    assert q == pytest.approx(sum(p) * 15 / 480)
    assert f[16:19] == pytest.approx([1 / 3.0] * 3) and sum(f) == pytest.approx(1.0)
    assert ww.prophet_arrival([0.0] * 96, 15, 480) == (0.0, None)
    assert ww.prophet_arrival([0.9] * 96, 15, 480)[0] == 1.0


def test_blend_mixes_profile_and_prophet():
    profile = {"q": 0.8, "pmf": normal_pmf(20, 4), "mean_minutes": 480}
    p = [0.0] * 40 + [0.5] * 32 + [0.0] * 24   # Prophet expects a later arrival (14:00) and q_P = 0.5
    q, pmf = ww.blend_arrival(profile, p, 15, prophet_weight=0.5, come_weight=0.5)
    assert q == pytest.approx(0.5 * 0.8 + 0.5 * 0.5)
    assert pmf[40] == pytest.approx(0.5 * profile["pmf"][40] + 0.5) and sum(pmf) == pytest.approx(1.0)
    assert ww.blend_arrival(profile, None, 15) == (0.8, profile["pmf"])
    assert ww.blend_arrival(profile, p, 15, prophet_weight=0.0, come_weight=0.0) == (0.8, profile["pmf"])


def test_arrival_windows_follow_the_local_day():
    # user at UTC+2 who arrives about 09:00 local = 07:00 UTC on weekdays and never on weekends
    profile = {"q": 0.9, "pmf": normal_pmf(20, 4), "mean_minutes": 480}
    weekend = {"q": 0.0, "pmf": normal_pmf(20, 4), "mean_minutes": 480}
    arrivals = {"offset_min": 120, "day_cut_minutes": 240, "slot_minutes": 15,
                "weekdays": dict({str(d): profile for d in range(5)}, **{"5": weekend, "6": weekend})}
    fc = forecast([0.0] * 192, start="2026-11-23T00:00:00Z")   # Monday and Tuesday (UTC)
    wins = ww.warm_windows(fc, risk=0.3, lead_minutes=15, arrivals=arrivals)
    # Monday's local day (04:00 local = 02:00 UTC) lies inside the forecast, which expects no occupancy: the
    # blended come probability halves and the window narrows. Tuesday's runs past the forecast: profile alone.
    monday = ww.arrival_slots(*ww.blend_arrival(profile, [0.0] * 96, 15), slot_minutes=15, risk=0.3, lead_minutes=15)
    tuesday = ww.arrival_slots(profile["q"], profile["pmf"], 15, risk=0.3, lead_minutes=15)
    base = {"mon": dt.datetime(2026, 11, 23, 2, tzinfo=dt.timezone.utc),
            "tue": dt.datetime(2026, 11, 24, 2, tzinfo=dt.timezone.utc)}
    expected = [(base[day] + dt.timedelta(minutes=15 * a), base[day] + dt.timedelta(minutes=15 * b))
                for day, runs in (("mon", monday), ("tue", tuesday)) for a, b in runs]
    assert [(w["start"], w["end"]) for w in wins] == [(a.strftime(ISO), b.strftime(ISO)) for a, b in expected]
    assert monday and tuesday and monday[0][1] - monday[0][0] < tuesday[0][1] - tuesday[0][0]
    assert is_warm(wins, "2026-11-23T07:00:00Z") and is_warm(wins, "2026-11-24T07:00:00Z")
    assert not is_warm(wins, "2026-11-23T20:00:00Z")
    # a dated profile overrides the weekday one: a day off on Tuesday
    arrivals["days"] = {"2026-11-24": weekend}
    wins = ww.warm_windows(fc, risk=0.3, lead_minutes=15, arrivals=arrivals)
    assert is_warm(wins, "2026-11-23T07:00:00Z") and not is_warm(wins, "2026-11-24T07:00:00Z")
    with pytest.raises(ValueError):
        ww.arrival_windows(fc, dict(arrivals, slot_minutes=30))


def test_arrival_quantile_reads_the_pmf_inside_a_range():
    pmf = [0.0] * 96
    pmf[16], pmf[17] = 0.5, 0.5
    assert ww.arrival_quantile(pmf, 15) == pytest.approx(255.0)          # median: the edge between the slots
    assert ww.arrival_quantile(pmf, 15, 0.1) == pytest.approx(16 * 15 + 0.2 * 15)
    assert ww.arrival_quantile(pmf, 15, 0.5, 17) == pytest.approx(17 * 15 + 7.5)
    assert ww.arrival_quantile(pmf, 15, 0.5, 20, 30) is None


def test_arrival_windows_carry_the_login_and_drop_the_past():
    pmf = normal_pmf(20, 1)                    # 09:00 local, SD 15 min
    arrivals = {"offset_min": 0, "day_cut_minutes": 240, "slot_minutes": 15,
                "weekdays": {str(d): {"q": 0.95, "pmf": pmf, "mean_minutes": 480, "samples": 30,
                                      "spread_minutes": 15.0, "bandwidth_minutes": 8.0, "pool_weight": 0.01}
                             for d in range(7)}}
    fc = forecast([0.0] * 96 * 2, start="2026-11-23T04:00:00Z")
    wins = ww.arrival_windows(fc, arrivals, risk=0.3, lead_minutes=0)
    assert [w["login"] for w in wins] == ["2026-11-23T09:07:30Z", "2026-11-24T09:07:30Z"]
    assert wins[0]["early_login"] < wins[0]["login"] and wins[0]["samples"] == 30
    assert wins[0]["q"] == pytest.approx(0.75 * 0.95)   # Prophet sees nobody: its come probability is 0
    later = ww.arrival_windows(fc, arrivals, risk=0.3, lead_minutes=0, now="2026-11-23T12:00:00Z")
    assert [w["login"] for w in later] == ["2026-11-24T09:07:30Z"]
