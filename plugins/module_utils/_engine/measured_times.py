# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the wake and hot-plug times plans use, from the reconnects the flows measured (plain data).

A plan's lead time is built from ``restore_s`` (wake from saved), ``resume_s`` (wake from paused) and
``hotplug_s`` (raise to full size). Constants stand in for them only until the flows have measured real
reconnects: then each is the median of the newest ``window`` measurements of that kind, per node (the desktop's
node) and pool-wide. Medians, because one restore on a loaded host must not double every lead time; the plan's
safety factor covers the spread.
"""

from __future__ import annotations

import statistics

WINDOW = 20
_KIND = {"saved": "restore_s", "paused": "resume_s"}


def _medians(rows, window):
    samples = {"restore_s": [], "resume_s": [], "hotplug_s": []}
    for row in rows:  # newest first
        key = _KIND.get(row.get("path"))
        if key and row.get("wake_s") is not None and len(samples[key]) < window:
            samples[key].append(float(row["wake_s"]))
        if row.get("resize_s") is not None and len(samples["hotplug_s"]) < window:
            samples["hotplug_s"].append(float(row["resize_s"]))
    return {key: round(statistics.median(values), 4) for key, values in samples.items() if values}


def measured_times(rows, window=WINDOW):
    """``{"pool": {...}, "nodes": {node: {...}}, "samples": n}`` from ``wake_timings`` rows, newest first; a kind
    without measurements is left out (the caller's defaults stay)."""
    nodes = {}
    for row in rows:
        if row.get("node"):
            nodes.setdefault(row["node"], []).append(row)
    return {"pool": _medians(rows, window),
            "nodes": {node: _medians(node_rows, window) for node, node_rows in sorted(nodes.items())},
            "samples": len(rows)}
