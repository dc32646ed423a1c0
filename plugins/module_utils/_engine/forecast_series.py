# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the series and grids of a login forecast (``_engine/forecast.py``): session rows as occupancy on the
user's local wall clock, the pool's average profile, the forecast grid and the contract dict. Numpy via ``_deps``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = _dt.timezone.utc


def to_utc(value):
    """datetime / ISO string -> aware UTC datetime (``None`` stays ``None``; naive values are refused)."""
    return _time.to_utc_or_none(value)


def iso(value):
    return _time.iso_z(value)


def normalise_rows(rows):
    """Session rows with aware UTC datetimes, sorted by start; bad rows raise InvalidInput."""
    out = []
    for r in rows:
        start = to_utc(r["start"])
        end = to_utc(r.get("end"))
        if end is not None and end < start:
            raise InvalidInput("session of %s ends before it starts (%s)" % (r.get("user"), iso(start)))
        out.append({
            "user": r.get("user"), "desktop": r.get("desktop"), "start": start, "end": end,
            "source": r.get("source"), "tz_offset_min": int(r.get("tz_offset_min") or 0),
        })
    out.sort(key=lambda x: x["start"])
    return out


def history_fingerprint(rows):
    """Stable hash of a user's sessions (start, end, offset), order-independent."""
    h = hashlib.sha256()
    for r in sorted((iso(to_utc(r["start"])), iso(to_utc(r.get("end"))) or "-", int(r.get("tz_offset_min") or 0))
                    for r in rows):
        h.update(("%s|%s|%d\n" % r).encode())
    return h.hexdigest()[:32]


def current_offset(rows, now=None, days=28):
    """The user's UTC offset now: the most common offset of the sessions of the last ``days`` days (latest wins ties)."""
    if not rows:
        return 0
    last = rows[-1]["start"] if now is None else now
    counts = {}
    for i, r in enumerate(rows):
        if r["start"] >= last - _dt.timedelta(days=days):
            c = counts.setdefault(r["tz_offset_min"], [0, 0])
            c[0] += 1
            c[1] = i
    if not counts:
        return rows[-1]["tz_offset_min"]
    return max(counts.items(), key=lambda kv: (kv[1][0], kv[1][1]))[0]


def occupancy(rows, grid_start_local, n_slots, slot_minutes, now, min_session_minutes=30):
    """Share of each local slot the user was connected (numpy array of ``n_slots``).

    ``grid_start_local`` is a naive local datetime; each session is shifted by its own offset. Open sessions run
    to ``now``; a session is at least ``min_session_minutes`` long (a login means the user was there).
    """
    np = require("numpy")
    total = n_slots * slot_minutes
    diff = np.zeros(total + 1, dtype=np.int32)
    for r in rows:
        off = _dt.timedelta(minutes=r["tz_offset_min"])
        end = r["end"] if r["end"] is not None else now
        end = max(end, r["start"] + _dt.timedelta(minutes=min_session_minutes))
        end = min(end, now) if r["start"] < now else end
        s = int((r["start"].replace(tzinfo=None) + off - grid_start_local).total_seconds() // 60)
        e = int((end.replace(tzinfo=None) + off - grid_start_local).total_seconds() // 60)
        s, e = max(s, 0), min(e, total)
        if e > s:
            diff[s] += 1
            diff[e] -= 1
    on = np.minimum(np.cumsum(diff[:total]), 1)
    return on.reshape(n_slots, slot_minutes).mean(axis=1)


def pool_profile(rows_by_user, now, weeks=8, min_session_minutes=30):
    """Average occupancy of all users by local weekday x hour over the last ``weeks``: ``{"w,h": p}`` (168 keys)."""
    np = require("numpy")
    acc = np.zeros(168)
    n = 0
    for rows in rows_by_user.values():
        rows = normalise_rows(rows)
        rows = [r for r in rows if r["start"] < now]
        if not rows:
            continue
        off = current_offset(rows, now)
        end_local = (now + _dt.timedelta(minutes=off)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        start_local = end_local - _dt.timedelta(days=7 * weeks)
        start_local = start_local.replace(hour=0)
        n_slots = int((end_local - start_local).total_seconds() // 3600)
        occ = occupancy(rows, start_local, n_slots, 60, now, min_session_minutes)
        how = how_index(start_local, n_slots, 60)
        sums = np.bincount(how, weights=occ, minlength=168)
        cnt = np.bincount(how, minlength=168)
        acc += sums / np.maximum(cnt, 1)
        n += 1
    if n:
        acc /= n
    return {"%d,%d" % (k // 24, k % 24): float(acc[k]) for k in range(168)}


def how_index(start_local, n_slots, slot_minutes):
    """Local hour-of-week (Mon 00h = 0) of each slot."""
    np = require("numpy")
    base = start_local.weekday() * 24 + start_local.hour
    mins = np.arange(n_slots) * slot_minutes + start_local.minute
    return ((base + mins // 60) % 168).astype(int)


def forecast_dict(user, method, reason, now, slot_minutes, start, p, lo, hi, rows, fingerprint):
    return {
        "user": user,
        "method": method,
        "reason": reason,
        "generated_at": iso(now),
        "slot_minutes": slot_minutes,
        "start": iso(start),
        "p": [round(float(x), 4) for x in p],
        "p_low": [round(float(x), 4) for x in lo],
        "p_high": [round(float(x), 4) for x in hi],
        "history": {
            "first": iso(rows[0]["start"]) if rows else None,
            "last": iso(rows[-1]["start"]) if rows else None,
            "sessions": len(rows),
            "fingerprint": fingerprint,
        },
    }


def forecast_grid(now, horizon_hours, slot_minutes):
    """UTC start (``now`` floored to the slot) and number of slots."""
    floor = now.replace(second=0, microsecond=0)
    floor -= _dt.timedelta(minutes=floor.minute % slot_minutes)
    return floor, int(horizon_hours * 60 // slot_minutes)


def busy_series(events, grid_start_local, n_slots, slot_minutes, off):
    """Share of each local slot covered by calendar busy events (offset ``off``)."""
    rows = [{"start": to_utc(e["start"]), "end": to_utc(e["end"]), "tz_offset_min": off} for e in events]
    far = max([r["end"] for r in rows] + [_dt.datetime(1970, 1, 1, tzinfo=UTC)])
    return occupancy(rows, grid_start_local, n_slots, slot_minutes, far, 0)
