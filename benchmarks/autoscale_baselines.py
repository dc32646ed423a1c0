"""The known policies the autoscale evaluation compares against, as their sources and docs describe them.

Each policy is a small object with ``step(demand, now) -> allocation for the next step``: it sees only the past (the
reading just taken), and its answer takes effect one step later (the replay in autoscale_eval.py does that).
Sources: ../shared/design/anchors-next.md ("In-session autoscaling").
"""

import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.usage_histogram import DecayingHistogram


class Threshold:
    """proxmox-vm-autoscale: up one step when usage > ``up`` % of the allocation, down one step after 2 readings
    below ``down`` %, a 300 s cooldown per resource, limits [low, high]; integer steps (1 core / 512 MB)."""

    def __init__(self, start, low, high, up, down, step, cooldown_s=300.0, low_readings=2):
        self.alloc = min(max(start, low), high)
        self.low, self.high, self.up, self.down, self.step = low, high, up, down, step
        self.cooldown_s, self.low_readings = cooldown_s, low_readings
        self.lows = 0
        self.last_change = -math.inf

    def step_once(self, demand, now):
        if demand is None:
            return self.alloc
        pct = 100.0 * demand / self.alloc
        if now - self.last_change < self.cooldown_s:
            return self.alloc
        if pct > self.up and self.alloc < self.high:
            self.alloc, self.lows, self.last_change = min(self.alloc + self.step, self.high), 0, now
        elif pct < self.down:
            self.lows += 1
            if self.lows >= self.low_readings and self.alloc > self.low:
                self.alloc, self.lows, self.last_change = max(self.alloc - self.step, self.low), 0, now
        else:
            self.lows = 0
        return self.alloc


class Vpa:
    """Kubernetes VPA recommender + updater: decaying histograms (24 h half-life, 5 % buckets), target p90,
    lower p50, upper p95, all +15 %; bounds widened by (1 + 1/days of history) while history is short; minimums;
    memory histogram fed with the peak of each 24 h interval, an out-of-memory (demand over the allocation) bumps
    memory to max(x1.2, +100 MiB). The updater changes the allocation only when it is outside [lower, upper]
    (VPA evicts then), setting it to the target. Recomputed every step (the recommender runs every minute)."""

    def __init__(self, start, minimum, maximum, first_edge, memory=False, half_life_s=86400.0):
        self.alloc = start
        self.minimum, self.maximum = minimum, maximum
        self.hist = DecayingHistogram(first_edge, half_life_s)
        self.memory = memory
        self.first_at = None
        self.window_start = None
        self.window_peak = None
        self.window_weight = 0.0
        self.window_ref = None

    def _add_peak(self, value, now):
        """Memory: keep only the 24 h interval's peak in the histogram (replace a smaller peak of the same interval)."""
        if self.window_start is None or now - self.window_start >= 86400.0:
            self.window_start, self.window_peak = now, None
        if self.window_peak is not None:
            if value <= self.window_peak:
                return
            old = self.hist.bucket(self.window_peak)
            # The histogram may have rescaled its weights since (lazy decay): scale what we added the same way.
            weight = self.window_weight * 2.0 ** (-(self.hist.reference - self.window_ref) / self.hist.half_life_s)
            left = self.hist.weights.get(old, 0.0) - weight
            if left > 1e-12:
                self.hist.weights[old] = left
            else:
                self.hist.weights.pop(old, None)
            self.hist.total -= weight
        self.hist.add(value, now)
        self.window_ref = self.hist.reference
        self.window_weight = 2.0 ** ((now - self.window_ref) / self.hist.half_life_s)
        self.window_peak = value

    def step_once(self, demand, now):
        if demand is None:
            return self.alloc
        if self.first_at is None:
            self.first_at = now
        if self.memory:
            if demand > self.alloc:  # out of memory
                self._add_peak(max(self.alloc * 1.2, self.alloc + 100.0), now)
            self._add_peak(demand, now)
        else:
            self.hist.add(demand, now)
        p50, p90, p95 = _percentiles(self.hist, (0.5, 0.9, 0.95))
        if p50 is None:
            return self.alloc
        days = max((now - self.first_at) / 86400.0, 1.0 / 288)
        target = min(max(p90 * 1.15, self.minimum), self.maximum)
        lower = max(p50 * 1.15 * (1.0 + 0.001 / days) ** -2, self.minimum)
        upper = min(p95 * 1.15 * (1.0 + 1.0 / days), self.maximum)
        if not lower <= self.alloc <= upper:
            self.alloc = target
        return self.alloc


def _percentiles(hist, qs):
    if not hist.total > 0:
        return [None] * len(qs)
    out, running, pending = [], 0.0, list(qs)
    keys = sorted(hist.weights)
    for index in keys:
        running += hist.weights[index]
        while pending and running >= pending[0] * hist.total:
            out.append(hist.upper_edge(index))
            pending.pop(0)
        if not pending:
            break
    while pending:
        out.append(hist.upper_edge(keys[-1]))
        pending.pop(0)
    return out
