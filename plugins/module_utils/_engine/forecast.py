# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: per-user login forecasts (Prophet) in the user's local time.

Contract (docs/architecture.md, "Forecast per user")::

    {"user", "method": "prophet"|"fallback", "reason", "generated_at", "slot_minutes", "start",
     "p": [...], "p_low": [...], "p_high": [...], "history": {"first", "last", "sessions", "fingerprint"}}

``p[i]`` is the probability that the user is connected during slot ``i`` (slot ``i`` starts at
``start + i * slot_minutes``, ``start`` in UTC). How it is made:

* The sessions are turned into an occupancy series on the user's *local wall clock* (each session shifted by its
  own ``tz_offset_min``), aggregated to ``fit_slot_minutes`` (default hourly): ``y`` = share of the slot connected.
* Prophet fits it with a flat-ish trend, a weekly seasonality and two *conditional* daily seasonalities (weekdays /
  weekends: a workday shape must not leak into Saturday), optional public holidays of ``country`` and, for users who
  consented, a ``busy`` regressor from calendar events.
* Prediction runs at ``fit_slot_minutes`` and is linearly interpolated to ``slot_minutes``; ``uncertainty_samples``
  is 0 (sampling costs more than the fit). The band is analytic: the standard error of the slot's expected
  occupancy, from the in-sample residual spread of the same local hour of the week over the weeks of history
  (``p ± z * sd / sqrt(weeks)``), clipped to [0, 1].
* A fitted model is stored (``model_store``) with the history fingerprint; an unchanged history reuses it (predict
  only), a changed one refits warm-started from the previous parameters.
* Users whose history spans less than ``min_history_days`` (14) get a fallback: the pool's average occupancy by local
  weekday x hour (``pool_profile``), or their own average when no pool is given, ``method: fallback`` + ``reason``.

Everything here takes and returns plain data so ``forecast_task`` can run in a process pool or on a Dask worker.
The parts live in their own files: series and grids (``forecast_series.py``: occupancy, pool profile, grid, the
contract dict), the fast predictor (``forecast_fast.py``), the fallback (``forecast_fallback.py``); this file holds
the Prophet model, its store and reuse, and the per-user / batch entry points. ``forecast_round.py`` runs a round.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import time
import warnings

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import stan_fit
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast_fallback import fallback_forecast
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast_fast import LightModel, light_params, predict
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast_series import (  # noqa: F401 (re-exported)
    busy_series, current_offset, forecast_dict, forecast_grid, history_fingerprint, how_index, iso,
    normalise_rows, occupancy, pool_profile, to_utc,
)

DEFAULTS = {
    "horizon_hours": 48,
    "slot_minutes": 15,
    "fit_slot_minutes": 60,
    "history_weeks": 12,
    "min_history_days": 14,
    "min_session_minutes": 30,
    "country": None,
    "band_z": 1.2816,           # 80 % two-sided band
    "daily_order": 8,
    "weekly_order": 4,
    "n_changepoints": 5,
    "changepoint_prior_scale": 0.05,
    "max_model_age_hours": 24 * 7,
    "cold_iter": 10000,
    "warm_iter": 30,            # L-BFGS budget of a warm-started refit (benchmarks/README.md: same forecast as 200)
    "stan_backend": "lean",     # "cmdstanpy": Prophet's stock backend (reference fits; slower)
}
MODEL_VERSION = 2  # 2: compact model files, sigma_obs kept for warm starts


# --------------------------------------------------------------------------------------------------- helpers

def quiet_logs():
    """Silence cmdstanpy's per-fit INFO lines and Prophet's plotly warning (idempotent, cheap)."""
    for name in ("cmdstanpy", "prophet", "prophet.plot", "prophet.forecaster", "prophet.models"):
        logging.getLogger(name).setLevel(logging.ERROR)
    lg = logging.getLogger("cmdstanpy")
    lg.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
        lg.addHandler(logging.NullHandler())
    warnings.filterwarnings("ignore", message=".*plotly.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="prophet.*")


def _prophet():
    quiet_logs()
    return require("prophet")


# --------------------------------------------------------------------------------------------------- forecast

def _config_key(opts, has_calendar):
    keys = ("fit_slot_minutes", "history_weeks", "min_session_minutes", "country", "daily_order", "weekly_order",
            "n_changepoints", "changepoint_prior_scale")
    d = {k: opts[k] for k in keys}
    d["calendar"] = bool(has_calendar)
    d["v"] = MODEL_VERSION
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


_FEATURES = {}
_PROPHET_CLASS = []


def _prophet_class():
    """``Prophet`` with a per-process memo of the seasonal design matrix.

    The Fourier features depend only on the time grid and the seasonality settings, and users on the same local
    grid (same weeks, same offset) share them; Prophet rebuilds them with pandas on every fit (~30 ms, as much as
    the optimisation). Models with holidays or regressors are never memoised."""
    if _PROPHET_CLASS:
        return _PROPHET_CLASS[0]
    base = _prophet().Prophet

    class MemoProphet(base):
        def make_all_seasonality_features(self, df):
            if self.extra_regressors or self.holidays is not None or self.country_holidays:
                return super().make_all_seasonality_features(df)
            np = require("numpy")
            cols = [df["ds"].to_numpy(dtype="datetime64[ns]").view(np.int64)]
            cols += [np.asarray(df[v["condition_name"]], dtype=np.int8) for v in self.seasonalities.values()
                     if v["condition_name"] is not None]
            h = hashlib.blake2b(digest_size=16)
            for col in cols:
                h.update(np.ascontiguousarray(col).tobytes())
            key = (h.hexdigest(), json.dumps(self.seasonalities, sort_keys=True, default=str))
            hit = _FEATURES.get(key)
            if hit is None:
                hit = super().make_all_seasonality_features(df)
                if len(_FEATURES) >= 32:
                    _FEATURES.pop(next(iter(_FEATURES)))
                _FEATURES[key] = hit
            features, priors, component_cols, modes = hit
            return features, list(priors), component_cols, {k: list(v) for k, v in modes.items()}

    _PROPHET_CLASS.append(MemoProphet)
    return MemoProphet


def _new_model(opts, with_busy):
    stock = opts.get("stan_backend") == "cmdstanpy"
    m = (_prophet().Prophet if stock else _prophet_class())(
        growth="linear", n_changepoints=opts["n_changepoints"],
        changepoint_prior_scale=opts["changepoint_prior_scale"],
        yearly_seasonality=False, weekly_seasonality=False, daily_seasonality=False,
        uncertainty_samples=0,
    )
    m.add_seasonality("weekly", period=7, fourier_order=opts["weekly_order"])
    m.add_seasonality("daily_workday", period=1, fourier_order=opts["daily_order"], condition_name="workday")
    m.add_seasonality("daily_weekend", period=1, fourier_order=opts["daily_order"], condition_name="weekend")
    if opts.get("country"):
        m.add_country_holidays(country_name=opts["country"])
    if with_busy:
        m.add_regressor("busy")
    if not stock:
        m.stan_backend = stan_fit.backend()
    return m


def _frame(ds, busy=None):
    pd = require("pandas")
    df = pd.DataFrame({"ds": ds})
    wd = df["ds"].dt.weekday
    df["workday"] = wd < 5
    df["weekend"] = ~df["workday"]
    if busy is not None:
        df["busy"] = busy
    return df


def _stored(store, model_dir, user, now, opts, cfg, fingerprint, with_events):
    """(model, meta, reused, init) from the model store.

    Same history fingerprint + config and young enough: reuse (predict only; the compact parameters in the meta
    file, or Prophet's JSON for models with holidays/regressors). Same config but a changed history: ``init`` = the
    stored parameters, so the refit is warm-started. Anything else: a cold fit.
    """
    if store is None:
        return None, None, False, None
    meta = store.load_meta(model_dir, user)
    if meta is None or meta.get("config") != cfg:
        return None, meta, False, None
    try:
        age_h = (now - to_utc(meta["fitted_at"])).total_seconds() / 3600.0
    except (KeyError, InvalidInput):
        age_h = -1.0
    light = meta.get("light")
    if meta.get("fingerprint") == fingerprint and 0 <= age_h <= opts["max_model_age_hours"] and meta.get("band"):
        if light and not with_events:
            return LightModel(light), meta, True, None
        model = store.load(model_dir, user)[0]
        if model is not None:
            return model, meta, True, None
    if light and "sigma_obs" in light.get("params", {}):
        return None, meta, False, {k: light["params"][k] for k in ("k", "m", "delta", "beta", "sigma_obs")}
    model = store.load(model_dir, user)[0]
    if model is None:
        return None, meta, False, None
    return None, meta, False, {k: model.params[k][0] for k in ("k", "m", "delta", "beta", "sigma_obs")}


def forecast_user(user, rows, now, options=None, pool=None, calendar=None, model_dir=None):
    """Forecast one user. ``rows``: the user's session rows; ``now``: the cut-off (aware UTC) = forecast start.

    Only sessions that started before ``now`` are used (so a backtest can pass the whole history).
    """
    np = require("numpy")
    pd = require("pandas")
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    now = to_utc(now)
    rows = [r for r in normalise_rows(rows) if r["start"] < now]
    fingerprint = history_fingerprint(rows)
    slot = int(opts["slot_minutes"])
    fit_slot = int(opts["fit_slot_minutes"])
    if 60 % slot and slot % 60:
        raise InvalidInput("slot_minutes must divide an hour or be a multiple of it, got %s" % slot)

    if not rows:
        return fallback_forecast(user, rows, now, opts, pool, fingerprint, "no history")
    span_days = (now - rows[0]["start"]).total_seconds() / 86400.0
    if span_days < opts["min_history_days"]:
        return fallback_forecast(user, rows, now, opts, pool, fingerprint,
                                 "history spans %.1f days (< %s)" % (span_days, opts["min_history_days"]))

    off = current_offset(rows, now)
    tz = _dt.timedelta(minutes=off)
    end_local = (now + tz).replace(tzinfo=None, second=0, microsecond=0)
    end_local -= _dt.timedelta(minutes=end_local.minute % fit_slot)
    begin_local = (rows[0]["start"] + _dt.timedelta(minutes=rows[0]["tz_offset_min"])).replace(
        tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    begin_local = max(begin_local, end_local - _dt.timedelta(days=7 * opts["history_weeks"]))
    begin_local = begin_local.replace(hour=0, minute=0)
    n_fit = int((end_local - begin_local).total_seconds() // 60 // fit_slot)
    y = occupancy(rows, begin_local, n_fit, fit_slot, now, opts["min_session_minutes"])
    ds = pd.date_range(begin_local, periods=n_fit, freq="%dmin" % fit_slot)

    events = list(calendar or [])
    start, n_out = forecast_grid(now, opts["horizon_hours"], slot)
    # Predict on the fit grid from the last fit slot to past the horizon, then interpolate.
    pred_start = end_local
    n_pred = int(math.ceil((opts["horizon_hours"] * 60 + 2 * fit_slot) / fit_slot)) + 1
    pds = pd.date_range(pred_start, periods=n_pred, freq="%dmin" % fit_slot)
    busy_hist = busy_pred = None
    if events:
        busy_hist = busy_series(events, begin_local, n_fit, fit_slot, off)
        busy_pred = busy_series(events, pred_start, n_pred, fit_slot, off)

    cfg = _config_key(opts, bool(events))
    store = None
    if model_dir:
        from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import model_store as store
    model, meta, reused, init = _stored(store, model_dir, user, now, opts, cfg, fingerprint, bool(events))

    t0 = time.time()
    if not reused:
        if float(y.max()) == 0.0:
            return fallback_forecast(user, rows, now, opts, pool, fingerprint,
                                     "no connected time in the last %s weeks" % opts["history_weeks"])
        model = _new_model(opts, bool(events))
        train = _frame(ds, busy_hist)
        train["y"] = y
        kwargs = {"iter": int(opts["cold_iter"])}
        if init:
            init = {k: (np.asarray(v, dtype=float).ravel() if k in ("delta", "beta") else float(np.ravel(v)[0]))
                    for k, v in init.items()}
            kwargs = {"init": init, "iter": int(opts["warm_iter"])}
        try:
            model.fit(train, **kwargs)
        except Exception:  # a warm start that does not fit the new shapes: fit cold
            if not init:
                raise
            init = None
            model = _new_model(opts, bool(events))
            model.fit(train, iter=int(opts["cold_iter"]))
        fit_s = time.time() - t0
        # In-sample residual spread per local hour of week -> analytic band.
        fitted = predict(model, _frame(ds, busy_hist))
        how = how_index(begin_local, n_fit, fit_slot)
        res = y - fitted
        cnt = np.bincount(how, minlength=168)
        sq = np.bincount(how, weights=res * res, minlength=168)
        sd = np.sqrt(sq / np.maximum(cnt, 1))
        weeks = max(n_fit * fit_slot / 10080.0, 1.0)
        band = {"sd_how": [round(float(x), 5) for x in sd], "weeks": weeks}
        if store is not None:
            store.save(model_dir, user, model, {
                "fingerprint": fingerprint, "config": cfg, "fitted_at": iso(now), "fit_seconds": round(fit_s, 4),
                "data_first": iso(rows[0]["start"]), "data_last": iso(rows[-1]["start"]),
                "sessions": len(rows), "tz_offset_min": off, "warm_start": bool(init), "band": band,
                "light": light_params(model),
            })
    else:
        band = meta["band"]

    yhat = predict(model, _frame(pds, busy_pred))
    sd = np.asarray(band["sd_how"])[how_index(pred_start, n_pred, fit_slot)]
    se = sd / math.sqrt(band["weeks"])
    # interpolate from fit slot centres to output slot centres (local minutes since pred_start)
    xs = np.arange(n_pred) * fit_slot + fit_slot / 2.0
    out_local0 = (start + tz).replace(tzinfo=None)
    xo = (out_local0 - pred_start).total_seconds() / 60.0 + np.arange(n_out) * slot + slot / 2.0
    p = np.clip(np.interp(xo, xs, yhat), 0, 1)
    s = np.interp(xo, xs, se)
    z = opts["band_z"]
    lo = np.clip(p - z * s, 0, 1)
    hi = np.clip(p + z * s, 0, 1)
    reason = "reused model fitted at %s (history unchanged)" % meta["fitted_at"] if reused else (
        "fitted on %d weeks%s" % (round(n_fit * fit_slot / 10080.0), " (warm start)" if init else ""))
    return forecast_dict(user, "prophet", reason, now, slot, start, p, lo, hi, rows, fingerprint)


def forecast_task(task):
    """Pure entry point for executors: ``task`` = dict(user, rows, now, options, pool, calendar, model_dir).

    Returns the forecast dict, or ``{"user", "error"}`` instead of raising (one bad user must not sink a batch).
    """
    quiet_logs()
    try:
        return forecast_user(task["user"], task.get("rows") or [], task["now"], task.get("options"),
                             task.get("pool"), task.get("calendar"), task.get("model_dir"))
    except Exception as exc:  # reported per user by the caller
        return {"user": task.get("user"), "error": "%s: %s" % (type(exc).__name__, exc)}


def forecast_many(rows_by_user, now, options=None, calendars=None, model_dir=None, engine="process",
                  workers=None, scheduler_address=None, pool=None):
    """Forecast every user of ``rows_by_user``; returns ``{user: forecast}`` (errors as ``{"error"}``)."""
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import executors
    now = to_utc(now)
    if pool is None:
        short = _dt.timedelta(days=(options or {}).get("min_history_days") or DEFAULTS["min_history_days"])
        needs = any(not rows or now - min(to_utc(r["start"]) for r in rows) < short
                    for rows in rows_by_user.values())
        pool = pool_profile(rows_by_user, now) if needs else None
    if model_dir:
        os.makedirs(model_dir, exist_ok=True)
    tasks = [{"user": u, "rows": rows, "now": now, "options": options, "pool": pool,
              "calendar": (calendars or {}).get(u), "model_dir": model_dir}
             for u, rows in sorted(rows_by_user.items())]
    if engine == "process":  # import Prophet & co. once in the parent: forked workers inherit them
        _prophet_class()
        stan_fit.backend()
    results = executors.run(forecast_task, tasks, engine=engine, workers=workers,
                            scheduler_address=scheduler_address)
    return {t["user"]: r for t, r in zip(tasks, results)}
