# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.forecast (documentation: plugins/modules/forecast.py).

Controller only: reads the history store, fits/reuses one Prophet model per user (``_engine/forecast.py``) in a
process pool or on a Dask cluster, writes ``<data_dir>/forecasts/forecasts-<generated>.json`` and ``latest.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os


from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrivals
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import profiles as profile_mod
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir, write_text_atomic
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import (
    FIT_ENGINE_ARGS, HISTORY_STORE_ARGS, store_options,
)
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    now=dict(type="str"),
    horizon_hours=dict(type="int", default=48),
    slot_minutes=dict(type="int", default=15, choices=[5, 10, 15, 20, 30, 60]),
    users=dict(type="list", elements="str"),
    country=dict(type="str"),
    options=dict(type="dict", default={}),
    **FIT_ENGINE_ARGS,
    **HISTORY_STORE_ARGS
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
        data_dir = os.path.expanduser(args["data_dir"] or default_data_dir())
        now = fc.to_utc(args["now"]) if args["now"] else _dt.datetime.now(_dt.timezone.utc)
        opts = dict(args["options"] or {})
        opts.update(horizon_hours=args["horizon_hours"], slot_minutes=args["slot_minutes"])
        if args["country"]:
            opts["country"] = args["country"]
        # Check mode reads the history as it is: it creates and migrates nothing (read_only).
        with HistoryStore.for_data_dir(data_dir, read_only=self._task.check_mode, **store_options(args)) as store:
            users = args["users"] or store.users()
            rows = {u: store.sessions(user=u, until=now) for u in users}
            consented = set(store.consented_users())
            horizon = now + _dt.timedelta(hours=args["horizon_hours"] + 24)
            since = now - _dt.timedelta(weeks=int(opts.get("history_weeks") or fc.DEFAULTS["history_weeks"]))
            calendars = {u: [e for e in store.calendar_events(u, since=since, until=horizon) if e["busy"]]
                         for u in users if u in consented}
            usage = store.utilisation(since=since)
        model_dir = None if self._task.check_mode else os.path.join(data_dir, "models")
        results = fc.forecast_many(rows, now, options=opts, calendars=calendars, model_dir=model_dir,
                                   engine=args["engine"], workers=args["workers"],
                                   scheduler_address=args["scheduler_address"])
        forecasts = [r for _u, r in sorted(results.items()) if "error" not in r]
        # The warm-window policy plans on each user's arrival profile (per local weekday, shrunk to the pool),
        # blended with the Prophet forecast: attach it, so allocation_plan uses the mechanism the backtest scores.
        profiles_by_user = arrivals.weekday_profiles_many(
            rows, now, {f["user"]: arrivals.usual_offset(rows.get(f["user"], [])) for f in forecasts})
        for item in forecasts:
            item["arrivals"] = profiles_by_user[item["user"]]
        errors = [r for _u, r in sorted(results.items()) if "error" in r]
        for err in errors:
            self._display.warning("forecast of %s failed: %s" % (err["user"], err["error"]))
        out_dir = os.path.join(data_dir, "forecasts")
        latest = os.path.join(out_dir, "latest.json")
        text = json.dumps(forecasts, indent=1, sort_keys=True)
        old = None
        if os.path.exists(latest):
            try:
                with open(latest, encoding="utf-8") as handle:
                    old = json.load(handle)
            except (OSError, ValueError):
                old = None

        def _essence(items):  # the reason text says "reused" vs "fitted": not a change of the forecast
            return [{k: v for k, v in f.items() if k != "reason"} for f in items or []]
        changed = old is None or _essence(old) != _essence(forecasts)
        path = os.path.join(out_dir, "forecasts-%s.json" % now.strftime("%Y%m%dT%H%M%SZ"))
        if changed and not self._task.check_mode:
            write_text_atomic(path, text)
            write_text_atomic(latest, text)
        counts = {"prophet": sum(1 for f in forecasts if f["method"] == "prophet"),
                  "fallback": sum(1 for f in forecasts if f["method"] == "fallback"),
                  "reused": sum(1 for f in forecasts if f["reason"].startswith("reused")),
                  "errors": len(errors)}
        # Resource profiles (p95 by hour) from the utilisation samples the session_recorder callback stored.
        # Every measured user is profiled (a user can be measured before they have a session history).
        user_profiles = profile_mod.profiles(profile_mod.samples_from_utilisation(
            [row for row in usage if not args["users"] or row.get("user") in args["users"]]))
        return {"changed": changed, "forecasts": forecasts, "errors": errors, "counts": counts,
                "profiles": [p for _u, p in sorted(user_profiles.items())],
                "path": path if changed else None, "latest": latest}
