# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: from traffic forecasts to bandwidth reservations on the desktops' secondary interfaces. Pure (stdlib).

A forecast (``_engine/traffic_forecast.py``) is the pool's hourly volume and mean concurrent connections to one
(application class, destination), with an 80 % band. A *surge* is a run of hours whose forecast volume is at least
``surge_ratio`` times the destination's median hour of the horizon and whose upper band reaches
``min_aggregate_mbit``. Each surge becomes a window, opened ``lead_minutes`` early so the reservation is in place
before the demand. The per-desktop rate is what one connection carried at the band's top: the hour's upper-band
volume over its (at least one) concurrent connections, bounded by ``min_rate_mbit`` and ``max_rate_mbit``. Before
the first window of the plan a desktop holds the reservation at ``minimal_mbit``; after the last it is released.

Only destinations that can be written as addresses are reserved: a named service (its CIDRs from ``services``) or
a prefix; ``other`` and unknown names are listed as skipped with the reason.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._time import iso_z, to_utc

DEFAULTS = {
    "surge_ratio": 2.0,
    "min_aggregate_mbit": 1.0,
    "lead_minutes": 15,
    "min_rate_mbit": 1.0,
    "max_rate_mbit": 1000.0,
    "minimal_mbit": 1.0,
    "max_reservations": 8,
}


def options(overrides=None):
    opts = dict(DEFAULTS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULTS:
            raise InvalidInput("unknown reservation option %r (known: %s)" % (key, ", ".join(sorted(DEFAULTS))))
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise InvalidInput("reservation option %s must be a non-negative number, got %r" % (key, value))
        opts[key] = value
    if opts["min_rate_mbit"] > opts["max_rate_mbit"]:
        raise InvalidInput("min_rate_mbit (%s) is above max_rate_mbit (%s)"
                           % (opts["min_rate_mbit"], opts["max_rate_mbit"]))
    return opts


def _mbit(nbytes):
    """Mean Mbit/s of ``nbytes`` in one hour."""
    return float(nbytes) * 8.0 / 3600.0 / 1e6


def _median(values):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def destination_cidrs(destination, services):
    """The CIDRs of a destination (a service's, or the prefix itself), or None when it has no address."""
    if destination in (services or {}):
        cidrs = services[destination]
        if isinstance(cidrs, str):
            cidrs = [cidrs]
        return [str(ipaddress.ip_network(c, strict=False)) for c in cidrs]
    try:
        return [str(ipaddress.ip_network(destination, strict=False))]
    except ValueError:
        return None


def _surge_runs(forecast, opts):
    """``[(first_hour, last_hour)]`` index runs of surge hours."""
    volume = forecast.get("bytes") or []
    high = forecast.get("bytes_high") or volume
    base = _median(volume)
    runs, start = [], None
    for i, value in enumerate(volume):
        surging = (value >= opts["surge_ratio"] * base and value > 0
                   and _mbit(high[i] if i < len(high) else value) >= opts["min_aggregate_mbit"])
        if surging and start is None:
            start = i
        if not surging and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(volume) - 1))
    return runs


def _per_desktop_mbit(forecast, hours, opts):
    high = forecast.get("bytes_high") or forecast.get("bytes") or []
    conns = forecast.get("connections_high") or forecast.get("connections") or []
    best = 0.0
    for i in hours:
        per_connection = _mbit(high[i]) / max(1.0, float(conns[i]) if i < len(conns) else 1.0)
        best = max(best, per_connection)
    return round(min(max(best, opts["min_rate_mbit"]), opts["max_rate_mbit"]), 3)


def plan_reservations(forecasts, services=None, overrides=None):
    """``{"reservations": [...], "skipped": [...], "options": {...}}`` from the forecasts of one round.

    A reservation: ``{"name", "app_class", "destination", "destinations", "minimal_mbit", "rate_mbit",
    "windows": [{"start", "end"}]}``, the largest surges first, at most ``max_reservations``.
    """
    opts = options(overrides)
    candidates, skipped = [], []
    for forecast in forecasts:
        app, dest = forecast.get("app_class"), forecast.get("destination")
        runs = _surge_runs(forecast, opts)
        if not runs:
            continue
        cidrs = destination_cidrs(dest, services)
        if not cidrs:
            skipped.append({"app_class": app, "destination": dest,
                            "reason": "no address to reserve for (not a prefix, and not in services)"})
            continue
        start = to_utc(forecast["start"])
        slot = _dt.timedelta(minutes=int(forecast.get("slot_minutes") or 60))
        lead = _dt.timedelta(minutes=opts["lead_minutes"])
        windows = [{"start": iso_z(start + first * slot - lead), "end": iso_z(start + (last + 1) * slot)}
                   for first, last in runs]
        hours = [i for first, last in runs for i in range(first, last + 1)]
        volume = sum((forecast.get("bytes") or [])[i] for i in hours)
        candidates.append((volume, {
            "name": "%s:%s" % (app, dest), "app_class": app, "destination": dest, "destinations": cidrs,
            "minimal_mbit": opts["minimal_mbit"], "rate_mbit": _per_desktop_mbit(forecast, hours, opts),
            "windows": windows}))
    candidates.sort(key=lambda item: (-item[0], item[1]["name"]))
    limit = int(opts["max_reservations"])
    for _volume, dropped in candidates[limit:]:
        skipped.append({"app_class": dropped["app_class"], "destination": dropped["destination"],
                        "reason": "beyond max_reservations (%d larger surges)" % limit})
    return {"reservations": [r for _v, r in candidates[:limit]], "skipped": skipped, "options": opts}


def reservations_at(plan, now, max_mbit=None):
    """What each desktop's secondary interface holds at ``now``: the full rate inside a window, the minimal rate
    before a reservation's last window ends, nothing after. ``[{"name", "destinations", "rate_mbit",
    "minimal_mbit"}]`` with both rates equal to the one that applies (the network_shadow role's input).

    ``max_mbit`` is the interface's rate: reservations that would add up to more are scaled down in proportion
    (a reservation can only share out the interface, never exceed it)."""
    now = to_utc(now, "now")
    held = []
    for reservation in (plan or {}).get("reservations") or []:
        windows = [(to_utc(w["start"]), to_utc(w["end"])) for w in reservation.get("windows") or []]
        if not windows or now >= max(end for _start, end in windows):
            continue
        inside = any(start <= now < end for start, end in windows)
        rate = reservation["rate_mbit"] if inside else reservation["minimal_mbit"]
        held.append({"name": reservation["name"], "destinations": list(reservation["destinations"]),
                     "rate_mbit": rate, "minimal_mbit": rate})
    total = sum(r["rate_mbit"] for r in held)
    if max_mbit is not None and total > float(max_mbit) > 0:
        scale = float(max_mbit) / total
        for entry in held:
            entry["rate_mbit"] = entry["minimal_mbit"] = int(entry["rate_mbit"] * scale * 1000) / 1000.0
    return held
