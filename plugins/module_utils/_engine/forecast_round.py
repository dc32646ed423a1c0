# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: one forecast round, as plain functions the ``forecast`` action, a backtest or a Dask worker can call.

* ``forecasts_for(rows_by_user, now, ...)``: every user's forecast (``_engine/forecast.py``, in a process pool or
  on a Dask cluster) with their arrival profiles attached (``_engine/arrivals.py``, one shared pool), plus the
  per-user errors. Plain data in, plain data out; no files.
* ``forecast_round(data_dir, now, ...)``: reads the history store, runs ``forecasts_for``, writes
  ``<data_dir>/forecasts/forecasts-<now>.json`` and ``latest.json`` when the forecasts changed (not in check
  mode), and computes the resource profiles of the measured users. Returns what the action reports.
"""

from __future__ import annotations

import datetime as _dt
import json
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrivals
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import profiles as profile_mod
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import write_text_atomic


def forecasts_for(rows_by_user, now, options=None, calendars=None, model_dir=None, engine="process", workers=None,
                  scheduler_address=None):
    """``(forecasts, errors)``: forecasts sorted by user, each with ``arrivals``; errors as ``{"user", "error"}``."""
    results = fc.forecast_many(rows_by_user, now, options=options, calendars=calendars, model_dir=model_dir,
                               engine=engine, workers=workers, scheduler_address=scheduler_address)
    forecasts = [r for _u, r in sorted(results.items()) if "error" not in r]
    errors = [r for _u, r in sorted(results.items()) if "error" in r]
    # The warm-window policy plans on each user's arrival profile (per local weekday, shrunk to the pool),
    # blended with the Prophet forecast: attach it, so allocation_plan uses the mechanism the backtest scores.
    offsets = {f["user"]: arrivals.usual_offset(rows_by_user.get(f["user"], [])) for f in forecasts}
    profiles_by_user = arrivals.weekday_profiles_many(rows_by_user, _time.to_utc(now), offsets)
    for item in forecasts:
        item["arrivals"] = profiles_by_user[item["user"]]
    return forecasts, errors


def _essence(items):
    """What decides ``changed``: the reason text says "reused" vs "fitted", which is not a change of forecast."""
    return [{k: v for k, v in f.items() if k != "reason"} for f in items or []]


def _read_latest(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def forecast_round(data_dir, now, users=None, options=None, engine="process", workers=None,
                   scheduler_address=None, check_mode=False, store_options=None):
    """Forecast the users of the history store under ``data_dir`` as of ``now`` (aware UTC).

    ``store_options``: how to reach the store (``HistoryStore.for_data_dir`` keywords, e.g. a PostgreSQL URL).
    Check mode reads the history as it is: it creates and migrates nothing, and writes no file."""
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
    opts = dict(options or {})
    with HistoryStore.for_data_dir(data_dir, read_only=check_mode, **(store_options or {})) as store:
        names = users or store.users()
        rows = {u: store.sessions(user=u, until=now) for u in names}
        consented = set(store.consented_users())
        horizon = now + _dt.timedelta(hours=int(opts.get("horizon_hours") or fc.DEFAULTS["horizon_hours"]) + 24)
        since = now - _dt.timedelta(weeks=int(opts.get("history_weeks") or fc.DEFAULTS["history_weeks"]))
        calendars = {u: [e for e in store.calendar_events(u, since=since, until=horizon) if e["busy"]]
                     for u in names if u in consented}
        usage = store.utilisation(since=since)
    model_dir = None if check_mode else os.path.join(data_dir, "models")
    forecasts, errors = forecasts_for(rows, now, opts, calendars, model_dir, engine, workers, scheduler_address)
    out_dir = os.path.join(data_dir, "forecasts")
    latest = os.path.join(out_dir, "latest.json")
    old = _read_latest(latest) if os.path.exists(latest) else None
    changed = old is None or _essence(old) != _essence(forecasts)
    path = os.path.join(out_dir, "forecasts-%s.json" % now.strftime("%Y%m%dT%H%M%SZ"))
    if changed and not check_mode:
        text = json.dumps(forecasts, indent=1, sort_keys=True)
        write_text_atomic(path, text)
        write_text_atomic(latest, text)
    counts = {"prophet": sum(1 for f in forecasts if f["method"] == "prophet"),
              "fallback": sum(1 for f in forecasts if f["method"] == "fallback"),
              "reused": sum(1 for f in forecasts if f["reason"].startswith("reused")),
              "errors": len(errors)}
    # Resource profiles (p95 by hour) from the utilisation samples the session_recorder callback stored.
    # Every measured user is profiled (a user can be measured before they have a session history).
    user_profiles = profile_mod.profiles(profile_mod.samples_from_utilisation(
        [row for row in usage if not users or row.get("user") in users]))
    return {"changed": changed, "forecasts": forecasts, "errors": errors, "counts": counts,
            "profiles": [p for _u, p in sorted(user_profiles.items())],
            "path": path if changed else None, "latest": latest}
