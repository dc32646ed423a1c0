# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: thin adapter to the warm-window policy ``_decisions/warm_windows.py`` (forecast + risk -> intervals).

Plans use the policy module when it is installed. Until it is, a minimal stand-in with the same contract
(``warm_windows(forecast, risk, lead_minutes, merge_gap_minutes)`` -> ``[{"start", "end", "peak"}]`` and
``risk_threshold(risk)``; optional ``arrivals`` profiles are ignored) keeps plans working: need = ``p + (1 - risk) * (p_high - p)``, a slot is needed when
need reaches the threshold, runs closer than the merge gap are joined. No arrival edge, no minimum window.
"""

from __future__ import annotations

import datetime as _dt

try:
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import warm_windows as _policy
except ImportError:  # the policy module is not there yet
    _policy = None

DEFAULT_RISK = getattr(_policy, "DEFAULT_RISK", 0.3)


def risk_threshold(risk):
    if _policy is not None:
        return _policy.risk_threshold(risk)
    risk = min(max(float(risk), 0.0), 1.0)
    return 0.01 + 0.49 * risk ** 1.5


def warm_windows(forecast, risk=DEFAULT_RISK, lead_minutes=0, merge_gap_minutes=60, arrivals=None):
    """Warm intervals of a forecast dict whose ``start`` is a UTC datetime or ISO string.

    ``arrivals``: the user's arrival profiles (``_engine/arrivals.weekday_profiles``); with them the policy's
    arrival rule decides (the stand-in ignores them)."""
    if _policy is not None:
        return _policy.warm_windows(forecast, risk=risk, lead_minutes=lead_minutes,
                                    merge_gap_minutes=merge_gap_minutes, arrivals=arrivals)
    slot = int(forecast["slot_minutes"])
    start = forecast["start"]
    p, high = forecast["p"], forecast.get("p_high") or forecast["p"]
    risk = min(max(float(risk), 0.0), 1.0)
    threshold = risk_threshold(risk)
    needed = [pi + (1.0 - risk) * max(hi - pi, 0.0) >= threshold for pi, hi in zip(p, high)]
    runs = []
    for i, flag in enumerate(needed):
        if not flag:
            continue
        if runs and i - runs[-1][1] <= merge_gap_minutes // slot:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    lead = -(-int(lead_minutes) // slot) if lead_minutes > 0 else 0
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return [{"start": (start + _dt.timedelta(minutes=(a - lead) * slot)).strftime(fmt),
             "end": (start + _dt.timedelta(minutes=b * slot)).strftime(fmt),
             "peak": round(max(p[a:b]), 4)} for a, b in runs]
