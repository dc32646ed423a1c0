"""Real Prophet fits on small synthetic histories with a known weekly pattern."""

import datetime as dt
import json
import os
import random

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import model_store

pytest.importorskip("prophet")
pytestmark = pytest.mark.prophet
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
KEYS = {"user", "method", "reason", "generated_at", "slot_minutes", "start", "p", "p_low", "p_high", "history"}


def workdays(user, weeks, login_local_h, hours, off_min, seed, end=NOW):
    """Mon-Fri sessions at a noisy local login hour; 10 % of days absent."""
    rnd = random.Random(seed)
    rows = []
    first = end - dt.timedelta(days=7 * weeks)
    for d in range(7 * weeks):
        day = first + dt.timedelta(days=d)
        if day.weekday() >= 5 or rnd.random() < 0.1:
            continue
        start = day + dt.timedelta(hours=login_local_h + rnd.gauss(0, 0.3), minutes=-off_min)
        rows.append({"user": user, "desktop": "desk-" + user, "start": start,
                     "end": start + dt.timedelta(hours=hours + rnd.gauss(0, 0.3)), "source": "test",
                     "tz_offset_min": off_min})
    return rows


def local_slot(fc_, day_offset, local_hour, off_min):
    """Index of the slot at ``local_hour`` on day ``day_offset`` after the forecast start."""
    start = fc.to_utc(fc_["start"])
    at = NOW + dt.timedelta(days=day_offset, hours=local_hour, minutes=-off_min)
    return int((at - start).total_seconds() // 60 // fc_["slot_minutes"])


@pytest.fixture(scope="module")
def histories():
    return {
        "early": workdays("early", 6, 8.0, 8.0, 60, 1),       # Paris, 08:00-16:00 local
        "late": workdays("late", 6, 13.0, 7.0, -300, 2),      # New York, 13:00-20:00 local
        "newbie": workdays("newbie", 1, 9.0, 8.0, 0, 3),      # 1 week: fallback
    }


@pytest.fixture(scope="module")
def results(histories, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("models"))
    out = fc.forecast_many(histories, NOW, options={"horizon_hours": 48}, model_dir=model_dir, workers=2)
    return out, model_dir


def test_contract_shape(results):
    for user, f in results[0].items():
        assert set(f) == KEYS, user
        assert f["slot_minutes"] == 15 and len(f["p"]) == 48 * 4 == len(f["p_low"]) == len(f["p_high"])
        assert all(0 <= lo <= p <= hi <= 1 for lo, p, hi in zip(f["p_low"], f["p"], f["p_high"]))
        assert f["start"] == "2026-03-02T00:00:00Z"
        json.dumps(f)


@pytest.mark.parametrize("user,login,off", [("early", 8.0, 60), ("late", 13.0, -300)])
def test_high_at_usual_hours_low_at_night_in_local_time(results, user, login, off):
    f = results[0][user]
    assert f["method"] == "prophet"
    for day in (0, 1):  # Monday and Tuesday
        mid = local_slot(f, day, login + 3, off)
        night = local_slot(f, day, 3, off)
        assert f["p"][mid] > 0.6, (user, day, f["p"][mid])
        assert f["p"][night] < 0.15, (user, day, f["p"][night])
        # local 06:00 is low for both; for "late" it is 11:00 UTC, the middle of "early"'s workday
        assert f["p"][local_slot(f, day, 6.0, off)] < 0.2


def test_fallback_for_short_history(results):
    f = results[0]["newbie"]
    assert f["method"] == "fallback"
    assert "< 14" in f["reason"] and "pool" in f["reason"]
    assert f["history"]["sessions"] > 0
    assert max(f["p"]) > 0


def test_model_reuse_and_warm_refit(results, histories):
    out, model_dir = results
    assert os.path.exists(os.path.join(model_dir, "early.json"))
    meta = model_store.load_meta(model_dir, "early")
    assert meta["fingerprint"] == out["early"]["history"]["fingerprint"]
    assert meta["versions"]["prophet"] and meta["data_last"] and meta["fit_seconds"] > 0
    fitted_at = os.path.getmtime(os.path.join(model_dir, "early.json"))
    again = fc.forecast_user("early", histories["early"], NOW, {"horizon_hours": 48}, model_dir=model_dir)
    assert again["reason"].startswith("reused")
    assert os.path.getmtime(os.path.join(model_dir, "early.json")) == fitted_at
    assert again["p"] == out["early"]["p"]
    # one more session: refit, warm-started from the stored parameters
    more = histories["early"] + workdays("early", 1, 8.0, 8.0, 60, 9, end=NOW + dt.timedelta(days=7))[:1]
    refit = fc.forecast_user("early", more, NOW + dt.timedelta(days=1), {"horizon_hours": 48}, model_dir=model_dir)
    assert refit["method"] == "prophet" and "warm start" in refit["reason"]
    assert model_store.load_meta(model_dir, "early")["warm_start"] is True


def test_no_history_and_bad_rows():
    f = fc.forecast_user("ghost", [], NOW, {"horizon_hours": 2})
    assert f["method"] == "fallback" and f["reason"].startswith("no history") and len(f["p"]) == 8
    bad = fc.forecast_task({"user": "x", "now": NOW, "rows": [{"start": "2026-01-01T00:00:00", "end": None}]})
    assert "error" in bad and "naive" in bad["error"]


def test_warm_refit_after_one_new_day_matches_a_cold_fit(histories, tmp_path):
    """The nightly path (warm start from yesterday's parameters, small L-BFGS budget) gives the cold fit's forecast."""
    model_dir = str(tmp_path)
    opts = {"horizon_hours": 48}
    fc.forecast_user("early", histories["early"], NOW, opts, model_dir=model_dir)
    monday = workdays("early", 1, 8.0, 8.0, 60, 5, end=NOW + dt.timedelta(days=7))[:1]
    assert monday and monday[0]["start"] < NOW + dt.timedelta(days=1)
    more = histories["early"] + monday
    later = NOW + dt.timedelta(days=1)
    warm = fc.forecast_user("early", more, later, opts, model_dir=model_dir)
    cold = fc.forecast_user("early", more, later, opts)
    assert "warm start" in warm["reason"] and "warm start" not in cold["reason"]
    diffs = [abs(a - b) for a, b in zip(warm["p"], cold["p"])]
    assert sum(diffs) / len(diffs) < 0.01 and max(diffs) < 0.05, (sum(diffs) / len(diffs), max(diffs))
    reference = fc.forecast_user("early", more, later, dict(opts, stan_backend="cmdstanpy"))
    diffs = [abs(a - b) for a, b in zip(cold["p"], reference["p"])]
    assert max(diffs) < 0.02, max(diffs)  # the lean backend finds Prophet's own optimum
