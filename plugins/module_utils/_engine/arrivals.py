# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: per-user empirical arrival-time distributions, the second input of the warm-window policy. Stdlib only.

Prophet (``_engine/forecast.py``) forecasts *occupancy* (is the user connected in slot t?). The warm-window policy
also needs the *arrival*: when, on a given local day, does the user's first login come, and does it come at all?
This module estimates both from the same session rows, per user and local weekday, for one planned day:

* A **local day** runs from ``day_cut_minutes`` after local midnight (04:00) to the same time next day; its arrival
  is the first session start in it (local time by the session's own UTC offset), counted in minutes from the cut.
* **Come probability** ``q``: share of that weekday's days (last ``weeks``) with an arrival, shrunk to the user's
  rate over the same day class (Mon-Fri or Sat-Sun), which is shrunk to the pool's class rate (pseudo-counts
  ``k_q``). A user with little history gets the pool's behaviour, one with much history their own.
* **Arrival pmf** over the day's slots, per user from their own spread: a compact kernel density of the arrivals
  of that weekday (weight 1) and of the user's other days of the same class (weight ``other_weight``), each arrival
  at its exact minute (the kernel's mass per slot, so a bandwidth below a slot still works), with

  - a **bandwidth per user** from a plug-in rule on their own arrivals (Silverman's robust rule
    ``0.9 min(sd, IQR/1.34) n^-1/5`` x ``bandwidth_scale``, weighted, ``n`` the effective sample size), shrunk on a
    log scale to the pool's bandwidth ``bandwidth_minutes`` with ``k_bandwidth`` pseudo-samples and never wider
    than it: a punctual user gets a few minutes, an irregular one up to the pool's hour, a new one the pool's;
  - a **pool share per user**: the pool's pmf (smoothed with ``bandwidth_minutes``) counts as ``k_pool``
    arrivals times the user's bandwidth over the pool's: a user with little history, or an irregular one, leans on
    the pool; a punctual one with a well-supported narrow spread hardly at all.

* ``mean_minutes``: the user's mean connected minutes on a day with a login (sessions at least 30 min, as in the
  occupancy Prophet is fitted on): it converts Prophet's expected occupancy of a day into a come probability.

Everything is computed from sessions that started before the planned day (causal, for backtests and plans alike).
"""

from __future__ import annotations

import datetime as _dt
import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrival_spread as _spread
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

DEFAULTS = {
    "weeks": 12,                # look-back (these defaults: validation period, benchmarks/README.md "Backtest")
    "day_cut_minutes": 240,     # a local day starts at 04:00
    "slot_minutes": 15,
    "bandwidth_minutes": 60,    # the pool's kernel, the prior of every user's own bandwidth and its upper bound
    "bandwidth_scale": 0.75,    # x the plug-in bandwidth of a user's own arrivals
    "k_bandwidth": 2.0,         # pseudo-samples of the prior bandwidth (log-scale shrinkage)
    "min_bandwidth_minutes": 2.0,
    "other_weight": 0.5,       # weight of the user's other same-class days against this weekday's
    "k_pool": 8.0,              # pseudo-samples of the pool in a user's pmf (x bandwidth / bandwidth_minutes)
    "k_q": 3.0,                 # pseudo-days of the prior come rate
    "min_session_minutes": 30,
    "per_user_spread": True,    # False (with k_pool 2): one kernel and pool weight for everybody, as before issue 13
}


def _options(options):
    unknown = sorted(set(options or {}) - set(DEFAULTS))
    if unknown:
        # a misspelt option would otherwise run the defaults under another name (a backtest variant, say)
        raise InvalidInput("unknown arrival option(s): %s" % ", ".join(unknown))
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    return opts


def user_days(rows, day_cut_minutes=240):
    """``[(local_day, arrival_minutes_after_cut, connected_minutes)]`` sorted by day, one entry per local day.

    ``rows``: one user's session rows (aware UTC ``start``/``end``, ``tz_offset_min``)."""
    first = {}
    for r in rows:
        shifted = _time.local_wall(r["start"], r["tz_offset_min"]) - _dt.timedelta(minutes=day_cut_minutes)
        day = shifted.date()
        minute = shifted.hour * 60 + shifted.minute + shifted.second / 60.0
        end = r.get("end") or r["start"]
        length = (end - r["start"]).total_seconds() / 60.0
        cur = first.get(day)
        if cur is None:
            first[day] = [minute, length]
        else:
            if minute < cur[0]:
                cur[0] = minute
            cur[1] += length
    return [(d, v[0], v[1]) for d, v in sorted(first.items())]


def _is_weekend(day):
    return day.weekday() >= 5


def _kernel(slot_minutes, bandwidth_minutes):
    sigma = max(float(bandwidth_minutes) / slot_minutes, 1e-6)
    half = int(math.ceil(3 * sigma))
    weights = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-half, half + 1)]
    total = sum(weights)
    return half, [w / total for w in weights]


def _smooth(hist, kernel):
    half, weights = kernel
    n = len(hist)
    out = [0.0] * n
    for i, h in enumerate(hist):
        if not h:
            continue
        for k, w in enumerate(weights):
            j = i + k - half
            if 0 <= j < n:
                out[j] += h * w
    return out


def _normalise(values):
    total = sum(values)
    return [v / total for v in values] if total > 0 else [1.0 / len(values)] * len(values)


def _observed_days(first_day, lo, day):
    """Local days in ``[max(lo, first_day), day)`` as a list."""
    d = max(lo, first_day)
    out = []
    while d < day:
        out.append(d)
        d += _dt.timedelta(days=1)
    return out


class ArrivalModel:
    """Arrival profiles of many users for one planned local day at a time (the pool is shared)."""

    def __init__(self, rows_by_user, options=None):
        self.opts = _options(options)
        self.n_slots = 24 * 60 // int(self.opts["slot_minutes"])
        self.kernel = _kernel(int(self.opts["slot_minutes"]), self.opts["bandwidth_minutes"])
        self.days = {u: user_days(rs, self.opts["day_cut_minutes"]) for u, rs in rows_by_user.items()}
        self._pool_cache = {}

    def _slot(self, minute):
        return min(max(int(minute // self.opts["slot_minutes"]), 0), self.n_slots - 1)

    def _window(self, entries, day):
        lo = day - _dt.timedelta(days=7 * int(self.opts["weeks"]))
        return lo, [e for e in entries if lo <= e[0] < day]

    def pool(self, day):
        """Pool come rate and smoothed arrival pmf of both day classes for ``day``: ``{weekend: (q, pmf)}``."""
        if day in self._pool_cache:
            return self._pool_cache[day]
        hist = {False: [0.0] * self.n_slots, True: [0.0] * self.n_slots}
        present = {False: 0, True: 0}
        observed = {False: 0, True: 0}
        for entries in self.days.values():
            if not entries or entries[0][0] >= day:
                continue
            lo, recent = self._window(entries, day)
            for d in _observed_days(entries[0][0], lo, day):
                observed[_is_weekend(d)] += 1
            for entry in recent:
                hist[_is_weekend(entry[0])][self._slot(entry[1])] += 1.0
                present[_is_weekend(entry[0])] += 1
        out = {}
        for cls in (False, True):
            q = (present[cls] + 0.5) / (observed[cls] + 1.0)
            out[cls] = (q, _normalise(_smooth(hist[cls], self.kernel)))
        self._pool_cache[day] = out
        return out

    def profile(self, user, day):
        """The arrival profile of ``user`` for local ``day`` (a ``datetime.date``): ``{"q", "pmf", "mean_minutes",
        "n"}`` and why the pmf is as wide as it is: ``samples`` (the user's arrivals of the day class it is made of),
        ``spread_minutes`` (their robust spread, ``None`` below two), ``bandwidth_minutes``, ``pool_weight``."""
        opts = self.opts
        cls = _is_weekend(day)
        pool_q, pool_pmf = self.pool(day)[cls]
        entries = self.days.get(user) or []
        if not entries or entries[0][0] >= day:
            return {"q": pool_q, "pmf": pool_pmf, "mean_minutes": 240.0, "n": 0, "samples": 0,
                    "bandwidth_minutes": float(opts["bandwidth_minutes"]), "spread_minutes": None, "pool_weight": 1.0}
        lo, recent = self._window(entries, day)
        same_class = [e for e in recent if _is_weekend(e[0]) == cls]
        same_day = [e for e in same_class if e[0].weekday() == day.weekday()]
        observed = _observed_days(entries[0][0], lo, day)
        obs_class = sum(1 for d in observed if _is_weekend(d) == cls)
        obs_day = sum(1 for d in observed if d.weekday() == day.weekday())
        k_q = float(opts["k_q"])
        q_class = (len(same_class) + k_q * pool_q) / (obs_class + k_q)
        q = (len(same_day) + k_q * q_class) / (obs_day + k_q)
        other = float(opts["other_weight"])
        samples = [(e[1], 1.0 if e[0].weekday() == day.weekday() else other) for e in same_class]
        samples = [s for s in samples if s[1] > 0]
        if opts["per_user_spread"]:
            pmf, spread = self._own_pmf(samples, pool_pmf)
        else:
            pmf, spread = self._fixed_pmf(samples, pool_pmf)
        floor = float(opts["min_session_minutes"])
        lengths = [max(e[2], floor) for e in recent]
        mean = sum(lengths) / len(lengths) if lengths else 240.0
        out = {"q": min(max(q, 0.0), 1.0), "pmf": pmf, "mean_minutes": mean, "n": len(same_day)}
        out.update(spread)
        return out

    def _fixed_pmf(self, samples, pool_pmf):
        """The pmf of one kernel for everybody (``per_user_spread`` off; the previous design, for comparison)."""
        hist = [0.0] * self.n_slots
        for minute, weight in samples:
            hist[self._slot(minute)] += weight
        own = _smooth(hist, self.kernel)
        k_pool = float(self.opts["k_pool"])
        weight = sum(w for _m, w in samples)
        pmf = _normalise([a + k_pool * b for a, b in zip(own, pool_pmf)]) if weight + k_pool > 0 else pool_pmf
        return pmf, {"samples": len(samples), "bandwidth_minutes": float(self.opts["bandwidth_minutes"]),
                     "spread_minutes": None, "pool_weight": round(k_pool / (weight + k_pool), 4) if weight + k_pool > 0 else 1.0}

    def _own_pmf(self, samples, pool_pmf):
        """The pmf from the user's own spread, leaning on the pool as far as their history asks for."""
        opts = self.opts
        prior = float(opts["bandwidth_minutes"])
        bandwidth, own_bandwidth, _n = _spread.plugin_bandwidth(
            samples, prior, float(opts["k_bandwidth"]), float(opts["bandwidth_scale"]),
            float(opts["min_bandwidth_minutes"]))
        share = _spread.pool_share(samples, bandwidth, prior, float(opts["k_pool"]))
        explain = {"samples": len(samples), "bandwidth_minutes": round(bandwidth, 2),
                   "spread_minutes": round(_spread.robust_spread(samples), 2) if own_bandwidth else None,
                   "pool_weight": round(share, 4)}
        if share >= 1.0:
            return pool_pmf, explain
        own = _normalise(_spread.slot_masses(samples, bandwidth, int(opts["slot_minutes"]), self.n_slots))
        return [(1.0 - share) * a + share * b for a, b in zip(own, pool_pmf)], explain


def weekday_profiles(rows, now, offset_min, options=None, pool_rows_by_user=None):
    """Arrival profiles of one user by local weekday for plans made at ``now``: ``{"offset_min", "day_cut_minutes",
    "slot_minutes", "weekdays": {"0".."6": profile}}`` (profiles of the next seven local days)."""
    by_user = dict(pool_rows_by_user or {}, _self=rows)
    return weekday_profiles_many(by_user, now, {"_self": offset_min}, options)["_self"]


def weekday_profiles_many(rows_by_user, now, offsets, options=None):
    """``weekday_profiles`` of every user in ``offsets`` (user -> UTC offset in minutes) with one shared pool.

    One model for everybody: the pool of a local day is computed once, not once per user.
    """
    model = ArrivalModel(rows_by_user, options)
    out = {}
    for user, offset_min in offsets.items():
        today = (_time.local_wall(now, offset_min) - _dt.timedelta(minutes=model.opts["day_cut_minutes"])).date()
        days = {}
        for k in range(7):
            day = today + _dt.timedelta(days=k)
            days[str(day.weekday())] = model.profile(user, day)
        out[user] = {"offset_min": int(offset_min), "day_cut_minutes": int(model.opts["day_cut_minutes"]),
                     "slot_minutes": int(model.opts["slot_minutes"]), "weekdays": days}
    return out


robust_spread = _spread.robust_spread


def usual_offset(rows):
    """The UTC offset (minutes) of a user's most recent session, 0 without one (the arrival model's local day)."""
    dated = [r for r in rows if r.get("start") is not None]
    if not dated:
        return 0
    return int(max(dated, key=lambda r: r["start"]).get("tz_offset_min") or 0)
