# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the fallback forecast for users with too little history for Prophet (``_engine/forecast.py``): the
pool's average occupancy by local weekday x hour, or the user's own average, with a wide band.
"""

from __future__ import annotations

import datetime as _dt

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast_series import (
    current_offset, forecast_dict, forecast_grid, how_index, occupancy,
)


def fallback_forecast(user, rows, now, opts, pool, fingerprint, reason):
    np = require("numpy")
    slot = opts["slot_minutes"]
    start, n = forecast_grid(now, opts["horizon_hours"], slot)
    off = current_offset(rows, now) if rows else int(opts.get("tz_offset_min") or 0)
    local0 = (start + _dt.timedelta(minutes=off)).replace(tzinfo=None)
    how = how_index(local0, n, slot)
    if pool:
        prof = np.array([pool.get("%d,%d" % (k // 24, k % 24), 0.0) for k in range(168)])
        source = "the pool's average occupancy by weekday and hour"
    elif rows:
        end_local = (now + _dt.timedelta(minutes=off)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        begin = (rows[0]["start"] + _dt.timedelta(minutes=rows[0]["tz_offset_min"])).replace(
            tzinfo=None, minute=0, second=0, microsecond=0)
        m = max(int((end_local - begin).total_seconds() // 3600), 1)
        occ = occupancy(rows, begin, m, 60, now, opts["min_session_minutes"])
        h = how_index(begin, m, 60)
        prof = np.bincount(h, weights=occ, minlength=168) / np.maximum(np.bincount(h, minlength=168), 1)
        source = "the user's own average by weekday and hour"
    else:
        prof = np.zeros(168)
        source = "nothing (no history, no pool profile)"
    p = prof[how]
    # A fallback knows little: the band spans the plausible range around the profile.
    spread = np.sqrt(np.clip(p * (1 - p), 0, 0.25)) * 0.5
    return forecast_dict(user, "fallback", "%s; using %s" % (reason, source), now, slot, start, p,
                         np.clip(p - spread, 0, 1), np.clip(p + spread, 0, 1), rows, fingerprint)
