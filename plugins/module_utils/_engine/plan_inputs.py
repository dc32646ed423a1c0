# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: check and normalise the inputs of an allocation plan. Every problem is an InvalidInput naming the
field (``forecasts[1].p_high``, ``nodes[0].vcpus``...), never a traceback.

Normalised shapes (used by ``_engine/plans.py`` and ``_decisions/placement.py``):
- forecast: ``{"user", "method", "reason", "start": datetime, "slot": timedelta, "p", "p_low", "p_high",
  "history": dict}``
- node: ``{"name", "vcpus", "memory_mib", "gpus", "used_vcpus", "used_memory_mib", "used_gpus"}``
- prices: ``{"default", "hourly": {hour: price}, "spot": {node: [(start, end, price)]}}``
- desktop: ``{"desktop", "node", "max_vcpus", "max_memory_mib", "shadow_vcpus", "shadow_memory_mib", "gpu",
  "gpus", "net", "disk_io"}``
"""

from __future__ import annotations

import datetime as _dt
import json
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

# Wake/resize times used when ``measured`` leaves one out, in seconds. From benchmarks/README.md (libvirt
# managed-save restore and virsh resume of a 2 GiB shadow, one vCPU + balloon hot-plug step); replace them with
# your own measurements through the ``measured`` option.
# Medians of benchmarks/reconnect.py on the reference test bed (TCG guest, 2026-11-22; see benchmarks/README.md):
# restore to responsive 0.96 s, resume 0.064 s, hot-plug to full size 0.67 s. Operators should pass their own.
DEFAULT_MEASURED = {"restore_s": 0.96, "resume_s": 0.064, "hotplug_s": 0.67}
FORECAST_METHODS = ("prophet", "fallback")


def _is_num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value, where, minimum=None, maximum=None, integer=False):
    if not (_is_int(value) if integer else _is_num(value)):
        raise InvalidInput("%s must be %s, got %r" % (where, "an integer" if integer else "a number", value))
    if minimum is not None and value < minimum:
        raise InvalidInput("%s must be >= %s, got %r" % (where, minimum, value))
    if maximum is not None and value > maximum:
        raise InvalidInput("%s must be <= %s, got %r" % (where, maximum, value))
    return value


def _dict(value, where):
    if not isinstance(value, dict):
        raise InvalidInput("%s must be a dict, got %s" % (where, type(value).__name__))
    return value


def _str(value, where):
    if not isinstance(value, str) or not value:
        raise InvalidInput("%s must be a non-empty string, got %r" % (where, value))
    return value


def _as_list(value, where, key_field="user"):
    """A list of dicts, or a dict keyed by ``key_field`` (values are dicts), or one dict holding ``key_field``."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if key_field in value and not isinstance(value[key_field], dict):
            return [value]
        items = []
        for key in sorted(value):
            item = _dict(value[key], "%s.%s" % (where, key))
            items.append(dict(item, **{key_field: item.get(key_field, key)}))
        return items
    raise InvalidInput("%s must be a list or a dict, got %s" % (where, type(value).__name__))


def read_forecasts_file(path, data_dir):
    """Forecasts from a JSON file; a relative path is under ``<data_dir>/forecasts``."""
    full = path if os.path.isabs(path) else os.path.join(data_dir, "forecasts", path)
    try:
        with open(full, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise InvalidInput("cannot read forecasts file %s: %s" % (full, exc.strerror or exc), path=full) from None
    except ValueError as exc:
        raise InvalidInput("forecasts file %s is not valid JSON: %s" % (full, exc), path=full) from None


def _series(forecast, key, where, length=None):
    values = forecast.get(key)
    if not isinstance(values, list):
        raise InvalidInput("%s.%s must be a list of probabilities, got %s" % (where, key, type(values).__name__))
    if length is not None and len(values) != length:
        raise InvalidInput("%s.%s has %d values but p has %d; the arrays must have the same length"
                           % (where, key, len(values), length))
    for i, value in enumerate(values):
        _num(value, "%s.%s[%d]" % (where, key, i), 0, 1)
    return [float(v) for v in values]


def normalise_forecasts(raw):
    forecasts = {}
    for i, item in enumerate(_as_list(raw, "forecasts")):
        where = "forecasts[%d]" % i
        item = _dict(item, where)
        for key in ("user", "method", "start", "slot_minutes", "p"):
            if key not in item:
                raise InvalidInput("%s is missing the field %r" % (where, key))
        user = _str(item["user"], where + ".user")
        where = "forecasts[%d] (user %s)" % (i, user)
        if item["method"] not in FORECAST_METHODS:
            raise InvalidInput("%s.method must be one of %s, got %r"
                               % (where, ", ".join(FORECAST_METHODS), item["method"]))
        if user in forecasts:
            raise InvalidInput("%s: user %s has more than one forecast" % (where, user))
        p = _series(item, "p", where)
        history = item.get("history") or {}
        forecasts[user] = {
            "user": user,
            "method": item["method"],
            "reason": str(item.get("reason") or ""),
            "start": parse_time(item["start"], where + ".start"),
            "slot": _dt.timedelta(minutes=_num(item["slot_minutes"], where + ".slot_minutes", 1, 1440, True)),
            "p": p,
            "p_low": _series(item, "p_low", where, len(p)) if "p_low" in item else list(p),
            "p_high": _series(item, "p_high", where, len(p)) if "p_high" in item else list(p),
            "history": _dict(history, where + ".history"),
            # optional arrival profiles (_engine/arrivals.weekday_profiles): the warm windows follow the arrival policy
            "arrivals": _dict(item["arrivals"], where + ".arrivals") if item.get("arrivals") else None,
        }
    return forecasts


def normalise_profiles(raw):
    profiles = {}
    for i, item in enumerate(_as_list(raw, "profiles")):
        where = "profiles[%d]" % i
        item = _dict(item, where)
        user = _str(item.get("user"), where + ".user")
        hourly = {}
        for hour, value in _dict(item.get("hourly") or {}, where + ".hourly").items():
            h = _hour(hour, "%s.hourly" % where)
            value = _dict(value, "%s.hourly.%s" % (where, hour))
            hourly[h] = {
                "cpu_p95": float(_num(value.get("cpu_p95", 0), "%s.hourly.%s.cpu_p95" % (where, hour), 0)),
                "memory_p95_mib": float(_num(value.get("memory_p95_mib", 0),
                                             "%s.hourly.%s.memory_p95_mib" % (where, hour), 0)),
            }
        profiles[user] = {
            "user": user,
            "vcpus": _num(item.get("vcpus", 0) or 0, where + ".vcpus", 0),
            "memory_mib": _num(item.get("memory_mib", 0) or 0, where + ".memory_mib", 0),
            "hourly": hourly,
            "samples": _num(item.get("samples", 0) or 0, where + ".samples", 0, integer=True),
        }
    return profiles


def _hour(value, where):
    try:
        hour = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("%s key %r is not an hour 0..23" % (where, value)) from None
    if not 0 <= hour <= 23:
        raise InvalidInput("%s key %r is not an hour 0..23" % (where, value))
    return hour


def normalise_nodes(raw):
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("nodes must be a non-empty list of {name, vcpus, memory_mib, gpus} dicts")
    nodes = []
    for i, item in enumerate(raw):
        where = "nodes[%d]" % i
        item = _dict(item, where)
        for key in ("name", "vcpus", "memory_mib"):
            if key not in item:
                raise InvalidInput("%s is missing the field %r" % (where, key))
        name = _str(item["name"], where + ".name")
        where = "nodes[%d] (%s)" % (i, name)
        if any(n["name"] == name for n in nodes):
            raise InvalidInput("%s: node name %s is used twice" % (where, name))
        nodes.append({
            "name": name,
            "vcpus": _num(item["vcpus"], where + ".vcpus", 0, integer=True),
            "memory_mib": _num(item["memory_mib"], where + ".memory_mib", 0, integer=True),
            "gpus": _num(item.get("gpus", 0), where + ".gpus", 0, integer=True),
            "used_vcpus": _num(item.get("used_vcpus", 0), where + ".used_vcpus", 0, integer=True),
            "used_memory_mib": _num(item.get("used_memory_mib", 0), where + ".used_memory_mib", 0, integer=True),
            "used_gpus": _num(item.get("used_gpus", 0), where + ".used_gpus", 0, integer=True),
        })
    return nodes


def normalise_prices(raw, node_names):
    raw = _dict(raw if raw is not None else {}, "prices")
    unknown = set(raw) - {"default", "hourly", "spot"}
    if unknown:
        raise InvalidInput("prices has unknown keys: %s (allowed: default, hourly, spot)" % ", ".join(sorted(unknown)))
    prices = {"default": float(_num(raw.get("default", 0.0), "prices.default", 0)), "hourly": {}, "spot": {}}
    for hour, value in _dict(raw.get("hourly") or {}, "prices.hourly").items():
        prices["hourly"][_hour(hour, "prices.hourly")] = float(_num(value, "prices.hourly.%s" % hour, 0))
    for node, entries in _dict(raw.get("spot") or {}, "prices.spot").items():
        if node not in node_names:
            raise InvalidInput("prices.spot names node %r, which is not in nodes (%s)" % (node, ", ".join(node_names)))
        if not isinstance(entries, list):
            raise InvalidInput("prices.spot.%s must be a list of {start, end, price}" % node)
        spans = []
        for j, entry in enumerate(entries):
            where = "prices.spot.%s[%d]" % (node, j)
            entry = _dict(entry, where)
            for key in ("start", "end", "price"):
                if key not in entry:
                    raise InvalidInput("%s is missing the field %r" % (where, key))
            start, end = parse_time(entry["start"], where + ".start"), parse_time(entry["end"], where + ".end")
            if end <= start:
                raise InvalidInput("%s ends before it starts" % where)
            spans.append((start, end, float(_num(entry["price"], where + ".price", 0))))
        prices["spot"][node] = spans
    return prices


def _limits(raw, where, fields):
    out = {}
    for key, value in _dict(raw or {}, where).items():
        value = _dict(value, "%s.%s" % (where, key))
        out[str(key)] = {f: _num(value.get(f, 0), "%s.%s.%s" % (where, key, f), 0, integer=True) for f in fields}
    return out


def normalise_desktops(raw, node_names):
    desktops = {}
    for user, item in sorted(_dict(raw if raw is not None else {}, "desktops").items()):
        where = "desktops.%s" % user
        item = _dict(item, where)
        for key in ("desktop", "max_vcpus", "max_memory_mib"):
            if key not in item:
                raise InvalidInput("%s is missing the field %r" % (where, key))
        node = item.get("node")
        if node is not None and node not in node_names:
            raise InvalidInput("%s.node %r is not in nodes (%s)" % (where, node, ", ".join(node_names)))
        entry = {
            "desktop": _str(item["desktop"], where + ".desktop"),
            "node": node,
            "max_vcpus": _num(item["max_vcpus"], where + ".max_vcpus", 1, integer=True),
            "max_memory_mib": _num(item["max_memory_mib"], where + ".max_memory_mib", 128, integer=True),
            "shadow_vcpus": _num(item.get("shadow_vcpus", 1), where + ".shadow_vcpus", 1, integer=True),
            "shadow_memory_mib": _num(item.get("shadow_memory_mib", 2048), where + ".shadow_memory_mib", 128,
                                      integer=True),
            "gpu": None,
            "net": _limits(item.get("net"), where + ".net", ("rate_kib_s",)),
            "disk_io": _limits(item.get("disk_io"), where + ".disk_io", ("total_iops", "total_bytes_sec")),
        }
        if entry["shadow_vcpus"] > entry["max_vcpus"] or entry["shadow_memory_mib"] > entry["max_memory_mib"]:
            raise InvalidInput("%s: the shadow size is larger than the maximum size" % where)
        if item.get("gpu") is not None:
            gpu = item["gpu"]
            if not isinstance(gpu, list) or not all(isinstance(g, str) and g for g in gpu):
                raise InvalidInput("%s.gpu must be a list of PCI addresses or mdev UUIDs" % where)
            entry["gpu"] = list(gpu)
        entry["gpus"] = _num(item.get("gpus", len(entry["gpu"] or [])), where + ".gpus", 0, integer=True)
        desktops[str(user)] = entry
    return desktops


def normalise_measured(raw):
    raw = _dict(raw if raw is not None else {}, "measured")
    unknown = set(raw) - set(DEFAULT_MEASURED)
    if unknown:
        raise InvalidInput("measured has unknown keys: %s (allowed: %s)"
                           % (", ".join(sorted(unknown)), ", ".join(sorted(DEFAULT_MEASURED))))
    out = dict(DEFAULT_MEASURED)
    for key, value in raw.items():
        if value is not None:
            out[key] = float(_num(value, "measured.%s" % key, 0))
    return out
