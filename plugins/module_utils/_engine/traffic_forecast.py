# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: traffic forecasts per (application class, destination), with an 80 % band.

Forecast (``method: "seasonal-profile"``)::

    {"app_class", "destination", "method", "generated_at", "start", "slot_minutes": 60,
     "bytes": [...], "bytes_low": [...], "bytes_high": [...],
     "connections": [...], "connections_low": [...], "connections_high": [...]}

Why not Prophet: network volume is dominated by the week's shape (office hours, weekends) and by persistence (a
busy server stays busy). The model here blends the median of the same hour over the last ``days`` days (weight
``day_weight``) with the median of the same hour of the week over the last ``weeks`` weeks, scaled by how the last
``level_hours`` compared with their own seasonal value (``level_weight`` damps that ratio). The band comes from the model's own recent
errors: the 10th/90th percentile of log((y + c) / (f + c)) over the forecasts it made from the daily origins of the
last ``band_days`` days (``c`` keeps quiet hours from exploding), widened by ``band_scale``. The defaults were chosen
on a validation period and the held-back weeks reported in benchmarks/README.md ("Network forecast"), against
seasonal-naive and last-day baselines and against Prophet on the CESNET series. numpy only (through ``_deps``).
"""

from __future__ import annotations

import datetime as _dt
import warnings

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = _dt.timezone.utc
WEEK = 168
DAY = 24
DEFAULTS = {
    "weeks": 4,
    "days": 3,
    "day_weight": 0.25,
    "auto_day_weight": 1,
    "level_hours": 24,
    "level_weight": 0.0,
    "band_days": 28,
    "band_scale": 1.0,
    "horizon_hours": 24,
    "min_history_days": 14,
}
METHOD = "seasonal-profile"
DAY_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def options(overrides=None):
    opts = dict(DEFAULTS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULTS:
            raise InvalidInput("unknown traffic forecast option %r" % key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise InvalidInput("traffic forecast option %s must be a non-negative number" % key)
        opts[key] = value
    if opts["weeks"] < 1 or opts["horizon_hours"] < 1 or opts["horizon_hours"] > WEEK:
        raise InvalidInput("weeks must be >= 1 and horizon_hours within 1..168")
    return opts


def _lag_median(y, np, period, count):
    """s[t] = median of y[t - period * k], k = 1..count (NaN where none is known)."""
    n = len(y)
    lagged = np.full((count, n), np.nan)
    for k in range(1, count + 1):
        if n > k * period:
            lagged[k - 1, k * period:] = y[:n - k * period]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # hours with no known lag stay NaN
        return np.nanmedian(lagged, axis=0)


def point_forecasts(y, origins, opts):
    """Point forecasts (len(origins) x horizon) from each origin index, using only values before it."""
    np = require("numpy")
    y = np.asarray(y, dtype=float)
    horizon = int(opts["horizon_hours"])
    padded = np.concatenate([y, np.full(horizon, np.nan)])
    weekly = _lag_median(padded, np, WEEK, int(opts["weeks"]))
    w = float(opts["day_weight"])
    if w > 0 and opts["days"] >= 1:
        daily = _lag_median(padded, np, DAY, int(opts["days"]))
        # where one of the two is unknown, the other stands alone
        seasonal = np.where(np.isnan(weekly), daily, np.where(np.isnan(daily), weekly, w * daily + (1 - w) * weekly))
    else:
        seasonal = weekly
    out = np.full((len(origins), horizon), np.nan)
    lh = int(opts["level_hours"])
    for i, origin in enumerate(origins):
        s = seasonal[origin:origin + horizon]
        ratio = 1.0
        if lh > 0 and origin >= lh and opts["level_weight"] > 0:
            recent, expected = y[origin - lh:origin], seasonal[origin - lh:origin]
            ok = ~(np.isnan(recent) | np.isnan(expected))
            if ok.sum() >= lh // 2 and expected[ok].sum() > 0:
                ratio = float(np.clip(recent[ok].sum() / expected[ok].sum(), 0.2, 5.0)) ** opts["level_weight"]
        out[i] = s * ratio
    return out


def _scale_constant(y, np):
    known = y[~np.isnan(y)]
    positive = known[known > 0]
    return max(float(np.median(positive)) * 0.05, 1e-9) if len(positive) else 1.0


def _smape_rows(actual, forecast, np):
    f = np.clip(forecast, 0, None)
    denom = np.abs(actual) + f
    with np.errstate(all="ignore"):
        terms = np.where(denom > 0, 2 * np.abs(actual - f) / np.where(denom > 0, denom, 1), 0.0)
    terms[np.isnan(actual) | np.isnan(forecast)] = np.nan
    return terms


def band_forecasts(y, origins, opts):
    """(point, low, high) arrays for daily-spaced ``origins``, each from values before its origin only.

    With ``auto_day_weight`` the blend of daily and weekly medians is chosen per series and origin: the
    candidate of :data:`DAY_WEIGHTS` with the lowest sMAPE over the forecasts it would have made from the daily
    origins of the last ``band_days`` days (some destinations follow the week, others persist day to day). The
    band comes from the chosen candidate's errors over the same days.
    """
    np = require("numpy")
    y = np.asarray(y, dtype=float)
    horizon = int(opts["horizon_hours"])
    band_days = int(opts["band_days"])
    first = min(origins) - band_days * DAY
    history_origins = [o for o in range(first, max(origins) + 1, DAY) if o - DAY >= 0]
    all_origins = sorted(set(history_origins) | set(origins))
    index = {o: i for i, o in enumerate(all_origins)}
    weights = DAY_WEIGHTS if opts["auto_day_weight"] else (float(opts["day_weight"]),)
    points = {w: point_forecasts(y, all_origins, dict(opts, day_weight=w)) for w in weights}
    actual = np.vstack([y[o:o + horizon] if o + horizon <= len(y) else np.full(horizon, np.nan)
                        for o in all_origins])
    c = _scale_constant(y[:min(origins)], np)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (gaps) are expected
        errors = {w: np.log((np.clip(actual, 0, None) + c) / (np.clip(points[w], 0, None) + c)) for w in weights}
        scores = {w: np.nanmean(_smape_rows(actual, points[w], np), axis=1) if len(weights) > 1 else None
                  for w in weights}
    p = np.full((len(origins), horizon), np.nan)
    low, high = np.full_like(p, np.nan), np.full_like(p, np.nan)
    for r, o in enumerate(origins):
        past = [index[q] for q in all_origins if o - band_days * DAY <= q and q + horizon <= o]
        chosen = weights[0]
        if len(weights) > 1 and past:
            means = [(float(np.nanmean(scores[w][past])) if not np.isnan(scores[w][past]).all() else float("inf"), i)
                     for i, w in enumerate(weights)]
            chosen = weights[min(means)[1]]
        p[r] = points[chosen][index[o]]
        pooled = errors[chosen][past].ravel() if past else np.array([])
        pooled = pooled[~np.isnan(pooled)]
        if len(pooled) < 24:
            q10, q90 = -0.7, 0.7
        else:
            q10, q90 = np.quantile(pooled, [0.1, 0.9])
        scale = opts["band_scale"]
        base = np.clip(p[r], 0, None) + c
        low[r] = np.clip(base * np.exp(min(q10, 0.0) * scale) - c, 0, None)
        high[r] = base * np.exp(max(q90, 0.0) * scale) - c
    return p, low, high


def hourly_grid(points, end):
    """Hourly sums of ``points`` ({hour_start datetime: value}) on a grid that ends just before ``end``."""
    np = require("numpy")
    if not points:
        return None, np.array([])
    start = min(points).replace(minute=0, second=0, microsecond=0)
    n = int((end - start).total_seconds() // 3600)
    y = np.zeros(max(n, 0))
    for when, value in points.items():
        i = int((when - start).total_seconds() // 3600)
        if 0 <= i < n:
            y[i] += value
    return start, y


def forecast_traffic(rows, now, overrides=None):
    """Forecasts for every (app_class, destination) in ``rows`` (hourly aggregates from the store).

    ``rows``: ``[{"hour": datetime, "app_class", "destination", "bytes", "connections"}]``. Keys with less than
    ``min_history_days`` of history are skipped and listed in the result's ``skipped`` with the reason.
    """
    np = require("numpy")
    opts = options(overrides)
    now = now.astimezone(UTC)
    origin_time = now.replace(minute=0, second=0, microsecond=0)
    by_key = {}
    for row in rows:
        key = (row["app_class"], row["destination"])
        entry = by_key.setdefault(key, ({}, {}))
        hour = row["hour"]
        entry[0][hour] = entry[0].get(hour, 0) + float(row["bytes"])
        entry[1][hour] = entry[1].get(hour, 0) + float(row.get("connections") or 0)
    forecasts, skipped = [], []
    horizon = int(opts["horizon_hours"])
    for (app_class, destination), (volume, conns) in sorted(by_key.items()):
        start, y = hourly_grid(volume, origin_time)
        if len(y) < opts["min_history_days"] * DAY:
            skipped.append({"app_class": app_class, "destination": destination,
                            "reason": "less than %d days of history" % opts["min_history_days"]})
            continue
        cy = hourly_grid(conns, origin_time)[1]  # same hours as the volume, so the same grid
        origin = len(y)
        result = {"app_class": app_class, "destination": destination, "method": METHOD,
                  "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "start": origin_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "slot_minutes": 60}
        for name, series in (("bytes", y), ("connections", cy)):
            ext = np.concatenate([series, np.full(horizon, np.nan)])
            p, low, high = band_forecasts(ext, [origin], opts)
            result[name] = [round(float(v), 3) for v in np.nan_to_num(p[0])]
            result[name + "_low"] = [round(float(v), 3) for v in np.nan_to_num(low[0])]
            result[name + "_high"] = [round(float(v), 3) for v in np.nan_to_num(high[0])]
        forecasts.append(result)
    return {"forecasts": forecasts, "skipped": skipped, "options": opts}
