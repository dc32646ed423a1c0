# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import traffic_forecast as tf
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = dt.timezone.utc
START = dt.datetime(2026, 9, 7, tzinfo=UTC)  # a Monday


def _office_volume(when, rng):
    busy = when.weekday() < 5 and 8 <= when.hour < 18
    return (5000.0 if busy else 500.0) * rng.uniform(0.8, 1.2)


def _rows(weeks, rng, dest="198.51.100.0/24"):
    rows = []
    for h in range(weeks * 168):
        when = START + dt.timedelta(hours=h)
        rows.append({"hour": when, "app_class": "web", "destination": dest, "bytes": _office_volume(when, rng),
                     "connections": 3.0})
    return rows


def test_forecast_follows_the_weekly_shape_and_band_covers_about_80_percent():
    rng = random.Random(1)
    rows = _rows(8, rng)
    now = START + dt.timedelta(weeks=8, hours=0, minutes=5)  # Monday 00:05
    result = tf.forecast_traffic(rows, now)
    (fc,) = result["forecasts"]
    assert fc["method"] == "seasonal-profile" and fc["start"] == "2026-11-02T00:00:00Z" and len(fc["bytes"]) == 24
    assert fc["bytes"][10] > 3 * fc["bytes"][3]  # 10:00 busy, 03:00 quiet
    assert all(lo <= p <= hi for lo, p, hi in zip(fc["bytes_low"], fc["bytes"], fc["bytes_high"]))
    actual = [_office_volume(now.replace(minute=0) + dt.timedelta(hours=i), rng) for i in range(24)]
    inside = sum(lo <= a <= hi for lo, a, hi in zip(fc["bytes_low"], actual, fc["bytes_high"]))
    assert 14 <= inside <= 24
    assert fc["connections"][5] == pytest.approx(3.0)


def test_short_history_is_skipped_with_reason():
    rows = _rows(1, random.Random(2))
    result = tf.forecast_traffic(rows, START + dt.timedelta(weeks=1))
    assert result["forecasts"] == [] and "less than 14 days" in result["skipped"][0]["reason"]


def test_level_shift_moves_the_forecast():
    rng = random.Random(3)
    rows = _rows(6, rng)
    for row in rows[-24:]:
        row["bytes"] *= 3
    weekly_only = {"auto_day_weight": 0, "day_weight": 0}
    fc = tf.forecast_traffic(rows, START + dt.timedelta(weeks=6), dict(weekly_only, level_weight=1))["forecasts"][0]
    flat = tf.forecast_traffic(rows, START + dt.timedelta(weeks=6), dict(weekly_only, level_weight=0))["forecasts"][0]
    assert fc["bytes"][10] > 1.4 * flat["bytes"][10]


@pytest.mark.parametrize("bad", [{"weeks": 0}, {"nope": 1}, {"band_scale": -1}, {"horizon_hours": 500}])
def test_bad_options(bad):
    with pytest.raises(InvalidInput):
        tf.options(bad)


def test_band_uses_only_the_past():
    np = pytest.importorskip("numpy")
    y = np.array([math.sin(i / 24 * 2 * math.pi) + 2 for i in range(24 * 60)])
    origin = 24 * 50
    p1, lo1, hi1 = tf.band_forecasts(y, [origin], tf.options())
    y2 = y.copy()
    y2[origin:] = 100.0  # the future changes, the forecast must not
    p2, lo2, hi2 = tf.band_forecasts(y2, [origin], tf.options())
    assert (p1 == p2).all() and (lo1 == lo2).all() and (hi1 == hi2).all()


def test_persistent_series_selects_the_daily_blend():
    np = pytest.importorskip("numpy")
    # a destination whose daily level wanders (a random walk): recent days predict better than last week
    rng = np.random.default_rng(4)
    levels = 1000 * np.exp(np.cumsum(rng.normal(0, 0.3, 70)))
    y = np.repeat(levels, 24)
    origins = [24 * d for d in range(56, 70)]
    auto = tf.band_forecasts(y, origins, tf.options())[0]
    weekly = tf.band_forecasts(y, origins, tf.options({"auto_day_weight": 0, "day_weight": 0}))[0]
    actual = np.vstack([y[o:o + 24] for o in origins])

    def smape(f):
        return float(np.mean(2 * np.abs(actual - f) / (actual + f)))
    assert smape(auto) < 0.7 * smape(weekly)
