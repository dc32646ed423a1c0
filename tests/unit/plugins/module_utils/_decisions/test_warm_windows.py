"""Pure tests of the warm-window policy."""

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import warm_windows as ww


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
    assert ww.is_warm(wins, "2026-11-23T12:00:00Z")
    assert not ww.is_warm(wins, "2026-11-23T03:00:00Z")
    with pytest.raises(ValueError):
        ww.warm_slots([0.1], [0.1, 0.2], 15)
    with pytest.raises(ValueError):
        ww.warm_slots([0.1], [0.1], 0)
