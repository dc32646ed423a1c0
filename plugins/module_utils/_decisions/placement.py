# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: on which compute node a user's planned desktop runs, and what it costs. Pure (stdlib only).

Inputs are normalised by the engine (``_engine/plans.py``): datetimes are aware UTC, nodes are dicts
``{"name", "vcpus", "memory_mib", "gpus", "used_vcpus", "used_memory_mib", "used_gpus"}`` and prices are
``{"default": float, "hourly": {0..23: float}, "spot": {node: [(start, end, price), ...]}}``.

A *demand* is ``(start, end, vcpus, memory_mib, gpus)``: what one user holds on a node during ``[start, end)``.

Rules:
- Capacity is hard: at every instant of every demand, used + already planned + this demand <= node capacity
  (vCPUs as the node may hand them out, overcommit included; memory; GPUs).
- Among the nodes that fit, the score is ``contention + cost_weight * (cost / cheapest - 1)``: contention is the
  highest fraction of vCPUs or memory in use on the node while the user holds it; cost is the price over exactly
  the planned intervals on that node (spot price when one covers the time, else the hour's price, else the
  default), so a node 20 % dearer needs 0.2 less contention to win. Ties go to the node name.
- Price unit: one "resource unit" per hour, a unit being 1 vCPU or 4 GiB of memory (``resource_units``).
"""

from __future__ import annotations

import datetime as _dt

MIB_PER_UNIT = 4096


def resource_units(vcpus, memory_mib):
    return float(vcpus or 0) + float(memory_mib or 0) / MIB_PER_UNIT


def price_at(prices, node, moment):
    """Price of one resource unit-hour on ``node`` at ``moment``."""
    for start, end, price in (prices.get("spot") or {}).get(node, ()):
        if start <= moment < end:
            return float(price)
    hourly = prices.get("hourly") or {}
    if moment.hour in hourly:
        return float(hourly[moment.hour])
    return float(prices.get("default", 0.0))


def _boundaries(prices, node, start, end):
    points = {start, end}
    hour = start.replace(minute=0, second=0, microsecond=0) + _dt.timedelta(hours=1)
    while hour < end:
        points.add(hour)
        hour += _dt.timedelta(hours=1)
    for s_start, s_end, _price in (prices.get("spot") or {}).get(node, ()):
        for point in (s_start, s_end):
            if start < point < end:
                points.add(point)
    return sorted(points)


def interval_cost(prices, node, start, end, units=1.0):
    """Cost of holding ``units`` resource units on ``node`` during ``[start, end)``."""
    if end <= start or not units:
        return 0.0
    points = _boundaries(prices, node, start, end)
    total = 0.0
    for left, right in zip(points, points[1:]):
        total += price_at(prices, node, left) * (right - left).total_seconds() / 3600.0
    return total * units


def demands_cost(prices, node, demands):
    return sum(interval_cost(prices, node, s, e, resource_units(v, m)) for s, e, v, m, _g in demands)


class Ledger:
    """What is already used and planned on each node over time."""

    def __init__(self, nodes):
        self.nodes = {n["name"]: n for n in nodes}
        self.planned = {n["name"]: [] for n in nodes}

    def _load_at(self, node, moment):
        info = self.nodes[node]
        vcpus = info.get("used_vcpus", 0)
        memory = info.get("used_memory_mib", 0)
        gpus = info.get("used_gpus", 0)
        for start, end, v, m, g in self.planned[node]:
            if start <= moment < end:
                vcpus, memory, gpus = vcpus + v, memory + m, gpus + g
        return vcpus, memory, gpus

    def assess(self, node, demands):
        """(fits, contention, reason) of adding ``demands`` to ``node``."""
        info = self.nodes[node]
        worst = 0.0
        for start, end, v, m, g in demands:
            moments = {start} | {p[0] for p in self.planned[node] if start < p[0] < end}
            for moment in moments:
                used_v, used_m, used_g = self._load_at(node, moment)
                if used_v + v > info["vcpus"]:
                    return False, None, "%d of %d vCPUs would be in use" % (used_v + v, info["vcpus"])
                if used_m + m > info["memory_mib"]:
                    return False, None, "%d of %d MiB would be in use" % (used_m + m, info["memory_mib"])
                if used_g + g > info.get("gpus", 0):
                    return False, None, "%d of %d GPUs would be in use" % (used_g + g, info.get("gpus", 0))
                fractions = [(used_v + v) / float(info["vcpus"]) if info["vcpus"] else 1.0,
                             (used_m + m) / float(info["memory_mib"]) if info["memory_mib"] else 1.0]
                worst = max(worst, *fractions)
        return True, worst, ""

    def add(self, node, demands):
        self.planned[node].extend(demands)


def choose_node(ledger, demands, prices, cost_weight=1.0, pinned=None):
    """Pick the node for ``demands``. Returns a dict:

    ``{"node", "fits", "contention", "cost", "reason", "candidates": {node: {...}}}``; ``node`` is None when
    nothing fits. A pinned node (the desktop lives there) is the only candidate.
    """
    names = [pinned] if pinned else sorted(ledger.nodes)
    candidates = {}
    for name in names:
        if name not in ledger.nodes:
            candidates[name] = {"fits": False, "reason": "unknown node"}
            continue
        fits, contention, reason = ledger.assess(name, demands)
        candidates[name] = {"fits": fits, "contention": contention, "reason": reason,
                            "cost": demands_cost(prices, name, demands)}
    feasible = [n for n in names if candidates[n]["fits"]]
    if not feasible:
        reasons = "; ".join("%s: %s" % (n, candidates[n]["reason"]) for n in names) or "no nodes"
        return {"node": None, "fits": False, "contention": None, "cost": None,
                "reason": "no node has capacity (%s)" % reasons, "candidates": candidates}
    cheapest = min(candidates[n]["cost"] for n in feasible)

    def score(name):
        cand = candidates[name]
        relative = (cand["cost"] / cheapest - 1.0) if cheapest > 0 else (1.0 if cand["cost"] > 0 else 0.0)
        cand["score"] = round(cand["contention"] + cost_weight * relative, 6)
        return cand["score"], name

    best = min(feasible, key=score)
    chosen = candidates[best]
    return {"node": best, "fits": True, "contention": chosen["contention"], "cost": chosen["cost"],
            "reason": "pinned" if pinned else "least contention/cost of %d fitting node(s)" % len(feasible),
            "candidates": candidates}
