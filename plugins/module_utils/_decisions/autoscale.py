# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the in-session autoscale policy for one resource of one desktop. Pure, stdlib only.

What it learns from (docs/decisions.md has the longer story):
- VPA's long memory: decaying usage histograms, target at a high percentile plus a margin. Ours keeps one
  histogram per time-of-day slot (weekday/weekend x hour, UTC) besides an overall one, and looks one slot ahead,
  because a desktop's use follows the working day (VPA has no notion of time and is slow by design).
- Threshold loops' fast reaction: a saturated resource goes up at once (no cooldown by default); coming down
  waits for ``down_after`` low readings in a row, a per-resource cooldown and a hysteresis band, and steps down at
  most ``down_step`` per action.
- Their users' failures, which this must never repeat: a missing reading is "do nothing", never 0 %; the
  cooldown is per resource; a value outside [floor, ceiling] is never proposed (so never a balloon above the
  assigned memory); stopped/paused desktops are not this module's business (see ``autoscale_desktop``).

Every decision carries ``reason`` in words. Units: CPU in CPUs' worth of time, memory in MiB, disk in bytes/s,
network in KiB/s. Time ``now`` is seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.usage_histogram import DecayingHistogram

KINDS = ("cpu", "memory", "disk", "net")
UNITS = {"cpu": "CPUs", "memory": "MiB", "disk": "bytes/s", "net": "KiB/s"}
# First histogram bucket edge per kind: below it every value is "about nothing".
FIRST_EDGE = {"cpu": 0.01, "memory": 16.0, "disk": 4096.0, "net": 1.0}
STATE_VERSION = 1

HOLD, UP, DOWN, SKIP = "hold", "up", "down", "skip"
_SLOT_NAMES = {prefix: ["%s%02d" % (prefix, hour) for hour in range(24)] for prefix in ("wd", "we", "all")}


@dataclass(frozen=True)
class PolicyParams:
    """The policy's knobs. Defaults chosen on the first 8 weeks of the Bitbrains trace (benchmarks/README.md)."""

    quantile: float = 0.9             # percentile of the usage histogram taken as the demand
    headroom: float = 0.15            # margin over that percentile: THE risk knob (higher = fewer starved steps)
    slot_half_life_s: float = 7 * 86400.0     # time-of-day slots: one sample a day each, so a week's memory
    # overall histogram: 2 h. VPA's 24 h held bursty VMs high between bursts; on the first 8 weeks of all 100
    # Bitbrains VMs 2 h reached threshold's and VPA's core-hours with fewer starved steps (benchmarks/README.md).
    overall_half_life_s: float = 7200.0
    min_slot_weight: float = 12.0     # a slot with less (decayed) weight falls back to the overall histogram
    min_overall_weight: float = 6.0   # with less than this, no recommendation yet (only the fast reaction)
    lookahead_s: float = 3600.0       # time of day: also the next slot's demand, so growth comes before the rush
    time_of_day: bool = False         # keep hour-of-day histograms and plan on the current and next hour's
    split_weekend: bool = True        # weekday and weekend slots apart (a weekend dip must not shrink Monday)
    saturation: float = 0.95          # usage at or above this share of the allocation = saturated
    up_step: float = 1.2              # when saturated, grow to at least this multiple of the allocation
    censored_bump: float = 1.0        # a saturated reading is recorded times this (it hides a larger demand)
    up_cooldown_s: float = 0.0        # per resource: up at once
    down_hysteresis: float = 0.1      # come down only when the wanted value is this share below the allocation
    down_after: int = 2               # ... for this many readings in a row
    down_cooldown_s: float = 300.0    # ... and this long after the resource's last change
    down_step: float = 1.0            # at most this share of the allocation per step down (1 = to the target)
    memory_margin_mib: float = 256.0  # memory never below the guest's used memory plus this ...
    memory_margin_share: float = 0.1  # ... or plus this share of it, whichever is larger
    # Recompute the slow percentile at most this often; the fast reaction looks at every reading, and a restart
    # (state reloaded) recomputes it.
    refresh_s: float = 1800.0

    def validate(self):
        """Raise ValueError naming the first impossible knob."""
        checks = (
            ("quantile", 0 < self.quantile <= 1), ("headroom", -0.9 < self.headroom <= 10),
            ("slot_half_life_s", self.slot_half_life_s > 0), ("overall_half_life_s", self.overall_half_life_s > 0),
            ("saturation", 0 < self.saturation <= 1), ("up_step", self.up_step >= 1), ("censored_bump", self.censored_bump >= 1),
            ("down_hysteresis", 0 <= self.down_hysteresis < 1), ("down_after", self.down_after >= 1),
            ("down_step", 0 < self.down_step <= 1), ("up_cooldown_s", self.up_cooldown_s >= 0),
            ("down_cooldown_s", self.down_cooldown_s >= 0), ("lookahead_s", self.lookahead_s >= 0),
            ("memory_margin_mib", self.memory_margin_mib >= 0), ("memory_margin_share", self.memory_margin_share >= 0),
            ("min_slot_weight", self.min_slot_weight >= 0), ("min_overall_weight", self.min_overall_weight >= 0),
            ("refresh_s", self.refresh_s >= 0),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError("autoscale parameter %s=%r is out of range" % (name, getattr(self, name)))
        return self


@dataclass
class Bounds:
    """Where one resource may go. ``floor``: the plan's current stage and the configured minimum; ``ceiling``: the
    desktop's maximum, the configured maximum and what the host can still give (never overcommit the node)."""

    floor: float
    ceiling: float
    granularity: float = 0.0          # values are rounded up to a multiple of this (0 = two significant digits)

    def clamp(self, value):
        return min(max(value, self.floor), self.ceiling)


@dataclass
class ResourceState:
    """What the policy remembers about one resource of one desktop (kept in the history store)."""

    overall: Optional[DecayingHistogram] = None
    slots: Dict[str, DecayingHistogram] = field(default_factory=dict)
    last_change_at: Optional[float] = None
    low_count: int = 0
    last_sample_at: Optional[float] = None
    cached_recommendation: Optional[float] = None
    cached_at: Optional[float] = None

    def to_dict(self):
        return {"overall": self.overall.to_dict() if self.overall else None,
                "slots": {k: h.to_dict() for k, h in sorted(self.slots.items())},
                "last_change_at": self.last_change_at, "low_count": self.low_count,
                "last_sample_at": self.last_sample_at}

    @classmethod
    def from_dict(cls, data):
        """Rebuild from ``to_dict``; raises ValueError when malformed."""
        if not isinstance(data, dict):
            raise ValueError("resource state must be a dict")
        try:
            overall = DecayingHistogram.from_dict(data["overall"]) if data.get("overall") else None
            slots = {str(k): DecayingHistogram.from_dict(v) for k, v in (data.get("slots") or {}).items()}
            last = data.get("last_change_at")
            sample = data.get("last_sample_at")
            return cls(overall, slots, None if last is None else float(last), int(data.get("low_count") or 0),
                       None if sample is None else float(sample))
        except (AttributeError, TypeError) as exc:
            raise ValueError("malformed resource state: %s" % exc) from None


@dataclass
class ResourceDecision:
    kind: str
    key: Optional[str]        # disk0 / net0 for per-device resources
    action: str               # up / down / hold / skip
    before: Optional[float]
    after: Optional[float]
    reason: str
    usage: Optional[float] = None
    recommendation: Optional[float] = None

    @property
    def changes(self):
        return self.action in (UP, DOWN)

    def to_dict(self):
        return {"resource": self.kind if self.key is None else "%s.%s" % (self.kind, self.key),
                "action": self.action, "before": self.before, "after": self.after, "reason": self.reason,
                "usage": _round(self.usage), "recommendation": _round(self.recommendation)}


def _round(value):
    return None if value is None else round(value, 3)


def slot_key(now, split_weekend=True):
    """The time-of-day slot of ``now`` (UTC hour, weekday/weekend apart when asked)."""
    hour = int(now // 3600) % 24
    if not split_weekend:
        return _SLOT_NAMES["all"][hour]
    weekday = (int(now // 86400) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    return _SLOT_NAMES["we" if weekday >= 5 else "wd"][hour]


def round_up(value, granularity):
    """Round a target up to the backend's step (a multiple of ``granularity``, or two significant digits)."""
    if value <= 0:
        return 0.0
    if granularity > 0:
        return round(math.ceil(value / granularity - 1e-9) * granularity, 6)
    scale = 10.0 ** (math.floor(math.log10(value)) - 1)
    return round(math.ceil(value / scale - 1e-9) * scale, 6)


def record(state, kind, usage, now, params, weight=1.0):
    """Add one reading to the resource's histograms."""
    if state.overall is None:
        state.overall = DecayingHistogram(FIRST_EDGE[kind], params.overall_half_life_s)
    elif state.overall.half_life_s != params.overall_half_life_s:  # a stored state from other settings
        state.overall.set_half_life(params.overall_half_life_s, now)
    state.overall.add(usage, now, weight)
    state.last_sample_at = now
    if not params.time_of_day:
        return
    key = slot_key(now, params.split_weekend)
    hist = state.slots.get(key)
    if hist is None:
        hist = state.slots[key] = DecayingHistogram(FIRST_EDGE[kind], params.slot_half_life_s)
    elif hist.half_life_s != params.slot_half_life_s:
        hist.set_half_life(params.slot_half_life_s, now)
    hist.add(usage, now, weight)


def recommendation(state, now, params):
    """The demand to plan for from now until ``lookahead_s`` ahead: the larger percentile of the current and the
    coming time-of-day slot (the overall histogram stands in for a slot with too little history), plus headroom.
    None while there is too little history."""
    if params.refresh_s and state.cached_at is not None and now - state.cached_at < params.refresh_s:
        return state.cached_recommendation
    result = None
    if state.overall is not None and state.overall.weight_at(now) >= params.min_overall_weight:
        overall = None
        best = 0.0
        moments = (now, now + params.lookahead_s) if params.lookahead_s else (now,)
        for at in moments if params.time_of_day else (None,):
            hist = None if at is None else state.slots.get(slot_key(at, params.split_weekend))
            if hist is not None and hist.weight_at(now) >= params.min_slot_weight:
                value = hist.percentile(params.quantile)
            else:
                if overall is None:
                    overall = state.overall.percentile(params.quantile)
                value = overall
            best = max(best, value or 0.0)
        result = best * (1.0 + params.headroom)
    state.cached_recommendation, state.cached_at = result, now
    return result


def decide_resource(kind, usage, allocation, now, state, bounds, params, key=None, hard_floor=None):
    """Decide one resource's next allocation and update ``state`` (record the reading, cooldown, low count).

    ``usage``: the reading (None = missing/unreadable: nothing is decided and nothing recorded);
    ``allocation``: what the desktop has now; ``hard_floor``: a value the result must never go under whatever the
    history says (memory: the guest's used memory plus the margin). Returns a ``ResourceDecision``.
    """
    unit = UNITS[kind]
    if usage is None:
        state.low_count = 0
        return ResourceDecision(kind, key, HOLD, allocation, allocation,
                                "no %s reading: doing nothing (a missing metric is not 0 %%)" % kind)
    saturated = allocation > 0 and usage >= params.saturation * allocation
    # A saturated reading is censored (the guest wanted more than it got): it may be recorded bumped, like VPA's
    # out-of-memory bump, so the histogram learns the real demand was higher.
    record(state, kind, usage * params.censored_bump if saturated else usage, now, params)
    rec = recommendation(state, now, params)
    wanted = allocation if rec is None else rec
    why = "history p%g%s + %g%% headroom = %.3g %s" % (
        100 * params.quantile, " of this and the next hour" if params.time_of_day else "", 100 * params.headroom,
        rec, unit) if rec is not None else "too little history"
    if saturated:
        fast = max(allocation * params.up_step, usage * (1.0 + params.headroom))
        if fast > wanted:
            wanted = fast
            why = "saturated: using %.3g of %.3g %s (>= %g%%)" % (usage, allocation, unit, 100 * params.saturation)
    if hard_floor is not None and hard_floor > wanted:
        wanted = hard_floor
        why = "guest uses %.4g %s; never below that plus the margin (%.4g)" % (usage, unit, hard_floor)
    target = bounds.clamp(round_up(wanted, bounds.granularity))
    if target != round_up(wanted, bounds.granularity):
        why += "; bounded to [%.4g, %.4g] %s" % (bounds.floor, bounds.ceiling, unit)
    decision = ResourceDecision(kind, key, HOLD, allocation, allocation, why, usage, rec)
    since_change = math.inf if state.last_change_at is None else now - state.last_change_at
    if allocation < bounds.floor or (hard_floor is not None and allocation < min(hard_floor, bounds.ceiling)):
        return _change(decision, state, now, UP, target, "below its floor (%.4g %s): %s" % (
            max(bounds.floor, min(hard_floor or 0, bounds.ceiling)), unit, why))
    # Less than one step (or 1 %) up is noise, e.g. a balloon read back a few MiB under what was set.
    if target > allocation + (bounds.granularity or 0.01 * allocation) - 1e-9:
        state.low_count = 0
        if since_change < params.up_cooldown_s:
            decision.reason = "would grow to %.4g %s (%s) but its up cooldown runs" % (target, unit, why)
            return decision
        return _change(decision, state, now, UP, target, why)
    if target < allocation * (1.0 - params.down_hysteresis) or allocation > bounds.ceiling:
        state.low_count += 1
        if allocation <= bounds.ceiling:
            if state.low_count < params.down_after:
                decision.reason = "low (%d of %d readings before coming down): %s" % (
                    state.low_count, params.down_after, why)
                return decision
            if since_change < params.down_cooldown_s:
                decision.reason = "low, but changed %.0f s ago (cooldown %.0f s): %s" % (
                    since_change, params.down_cooldown_s, why)
                return decision
        step = max(target, round_up(allocation * (1.0 - params.down_step), bounds.granularity))
        return _change(decision, state, now, DOWN, bounds.clamp(step), why)
    state.low_count = 0
    decision.reason = "within the band: %s" % why
    return decision


def _change(decision, state, now, action, after, why):
    if after == decision.before:
        decision.reason = why
        return decision
    state.last_change_at = now
    state.low_count = 0
    decision.action, decision.after, decision.reason = action, after, why
    return decision
