# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: a decaying usage histogram (the long memory of the autoscale policy). Pure, stdlib only.

Like the Kubernetes VPA recommender's histograms: buckets grow geometrically (5 % by default, so a percentile is
known to within 5 % at any scale), and each sample's weight halves every ``half_life_s`` seconds, so the recent
past counts most while a week-old peak is still remembered. Decay is lazy: a new sample is added with weight
``2 ** ((t - reference) / half_life)`` instead of shrinking every bucket; the reference moves forward (and all
weights are rescaled once) before the numbers grow large. A percentile is unchanged by that rescaling.

The state is a small JSON-able dict (only occupied buckets), stored per desktop in the history store.
"""

from __future__ import annotations

import math

# Rescale once the newest sample would weigh more than 2**40 times the reference: far from float overflow.
_MAX_EXPONENT = 40.0
# Buckets lighter than this share of the total after a rescale are forgotten (keeps the state small).
_PRUNE_SHARE = 1e-7


class DecayingHistogram:
    """Weighted samples of one resource's usage; ``percentile(q)`` answers with the upper edge of a bucket."""

    __slots__ = ("first_edge", "growth", "half_life_s", "reference", "weights", "total", "_log_growth")

    def __init__(self, first_edge, half_life_s, growth=1.05, reference=None, weights=None):
        if not (first_edge > 0 and growth > 1 and half_life_s > 0):
            raise ValueError("a histogram needs first_edge > 0, growth > 1 and half_life_s > 0")
        self.first_edge = float(first_edge)
        self.growth = float(growth)
        self.half_life_s = float(half_life_s)
        self.reference = reference
        self.weights = dict(weights or {})
        self.total = sum(self.weights.values())
        self._log_growth = math.log(self.growth)

    def bucket(self, value):
        """Index of the bucket holding ``value``: 0 is [0, first_edge), bucket i ends at first_edge * growth**i."""
        if value < self.first_edge:
            return 0
        return int(math.log(value / self.first_edge) / self._log_growth) + 1

    def upper_edge(self, index):
        return self.first_edge * self.growth ** index

    def add(self, value, at, weight=1.0):
        """Add one sample taken at ``at`` (seconds, any epoch as long as it is the same for every call)."""
        if value is None or math.isnan(value) or value < 0:  # None / NaN / negative: not a measurement
            return
        if self.reference is None:
            self.reference = float(at)
        exponent = (at - self.reference) / self.half_life_s
        if exponent > _MAX_EXPONENT:
            self._rescale(at)
            exponent = 0.0
        scaled = weight * 2.0 ** exponent
        index = self.bucket(value)
        self.weights[index] = self.weights.get(index, 0.0) + scaled
        self.total += scaled

    def _rescale(self, at):
        factor = 2.0 ** (-(at - self.reference) / self.half_life_s)
        floor = self.total * factor * _PRUNE_SHARE
        self.weights = {i: w * factor for i, w in self.weights.items() if w * factor > floor}
        self.total = sum(self.weights.values())
        self.reference = float(at)

    def set_half_life(self, half_life_s, at):
        """Decay at another rate from ``at`` on; the weights as seen at ``at`` are kept (a policy whose half-life
        changed keeps what its histograms learned)."""
        if not half_life_s > 0:
            raise ValueError("a histogram needs half_life_s > 0")
        if self.reference is not None:
            self._rescale(at)
        self.half_life_s = float(half_life_s)

    def weight_at(self, at):
        """Total weight as seen at time ``at`` (decayed): roughly "how many recent samples back this up"."""
        if self.reference is None:
            return 0.0
        return self.total * 2.0 ** (-(at - self.reference) / self.half_life_s)

    def percentile(self, q):
        """The smallest bucket edge below which a share ``q`` of the weight lies; None when empty."""
        if not self.total > 0:
            return None
        threshold = q * self.total
        running = 0.0
        last = 0
        for index in sorted(self.weights):
            running += self.weights[index]
            last = index
            if running >= threshold:
                break
        return self.upper_edge(last)

    def to_dict(self):
        return {"first_edge": self.first_edge, "growth": self.growth, "half_life_s": self.half_life_s,
                "reference": self.reference,
                "weights": {str(i): round(w, 9) for i, w in sorted(self.weights.items())}}

    @classmethod
    def from_dict(cls, data):
        """Rebuild from ``to_dict``; raises ValueError on anything malformed (the caller starts afresh)."""
        try:
            weights = {int(i): float(w) for i, w in (data.get("weights") or {}).items()}
            if any(i < 0 or not w >= 0 or math.isinf(w) for i, w in weights.items()):
                raise ValueError("negative, infinite or NaN bucket")
            reference = data.get("reference")
            return cls(float(data["first_edge"]), float(data["half_life_s"]), float(data.get("growth", 1.05)),
                       None if reference is None else float(reference), weights)
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError("malformed histogram state: %s" % exc) from None
