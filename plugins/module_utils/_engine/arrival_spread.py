# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: one user's arrival-time density from their own spread. Stdlib only (used by ``_engine/arrivals.py``).

Samples are ``(minute, weight)`` pairs: arrival minutes after the local day cut, weighted (this weekday 1, the
user's other days of the same class less). Three estimates:

* ``plugin_bandwidth``: Silverman's robust normal-reference rule ``0.9 min(sd, IQR/1.34) n^-1/5`` (weighted; ``n``
  is Kish's effective sample size), then shrunk on a log scale to a prior bandwidth with ``k`` pseudo-samples, so
  a user with two arrivals is smoothed like the pool and one with forty like themselves.
* ``slot_masses``: the kernel density's mass in each slot (the difference of the kernel's CDF at the slot edges),
  so an arrival at 07:58 with a 3-minute bandwidth stays in the 07:45 slot and leaves 07:30 empty; mass beyond
  the day is dropped (the caller normalises). The kernel is Epanechnikov's (``3/4 (1 - u^2)`` on ``|u| <= 1``,
  radius ``sqrt(5)`` bandwidths, so the bandwidth is its standard deviation as for a Gaussian): compact, because
  a user's own arrivals say nothing about hours far from all of them; the pool's share covers those tails.
* ``pool_weight``: the share of the pool's pmf in the user's pmf that maximises the leave-one-out likelihood of the
  user's own arrivals plus a Beta prior of ``k`` pseudo-samples towards the pool: arrivals that the user's other
  arrivals do not explain raise it, a user with little history stays near the pool.
"""

from __future__ import annotations

import math

_RADIUS = math.sqrt(5.0)   # Epanechnikov support in bandwidths (unit variance)
# candidate pool weights: 0.0001 .. 1, geometric (the prior keeps the optimum away from 0)
_WEIGHT_GRID = [10 ** (-4 + 0.25 * i) for i in range(17)]


def _kernel_cdf(z):
    """CDF of the unit-variance Epanechnikov kernel at ``z`` bandwidths."""
    u = z / _RADIUS
    if u <= -1.0:
        return 0.0
    if u >= 1.0:
        return 1.0
    return 0.5 + 0.75 * u - 0.25 * u ** 3


def _gauss_cdf(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _gauss_density(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) if abs(z) < 8 else 0.0


KERNELS = {"epanechnikov": (_RADIUS, lambda z: _kernel_cdf(z), lambda z: _kernel_density(z)),
           "gaussian": (4.0, _gauss_cdf, _gauss_density)}


def _kernel_density(z):
    """Density of the unit-variance Epanechnikov kernel at ``z`` bandwidths."""
    u = z / _RADIUS
    return 0.75 * (1.0 - u * u) / _RADIUS if -1.0 < u < 1.0 else 0.0


def effective_n(samples):
    total = sum(w for _x, w in samples)
    squares = sum(w * w for _x, w in samples)
    return total * total / squares if squares > 0 else 0.0


def _weighted_quantile(ordered, total, fraction):
    target = fraction * total
    acc = 0.0
    for x, w in ordered:
        acc += w
        if acc >= target:
            return x
    return ordered[-1][0]


def robust_spread(samples):
    """``min(sd, IQR / 1.34)`` of weighted minutes (0 without two samples); a single outlier does not inflate it."""
    total = sum(w for _x, w in samples)
    if len(samples) < 2 or total <= 0:
        return 0.0
    mean = sum(x * w for x, w in samples) / total
    sd = math.sqrt(max(sum(w * (x - mean) ** 2 for x, w in samples) / total, 0.0))
    ordered = sorted(samples)
    iqr = _weighted_quantile(ordered, total, 0.75) - _weighted_quantile(ordered, total, 0.25)
    return min(sd, iqr / 1.34) if iqr > 0 else sd


def plugin_bandwidth(samples, prior_minutes, k_prior, scale=1.0, floor_minutes=1.0):
    """``(bandwidth, own_bandwidth_or_None, n_eff)`` in minutes for weighted arrival ``samples``."""
    n = effective_n(samples)
    spread = robust_spread(samples)
    if n < 1.5 or spread <= 0:
        own = None if n < 1.5 else float(floor_minutes)
    else:
        own = max(0.9 * spread * n ** -0.2 * scale, float(floor_minutes))
    if own is None:
        return float(prior_minutes), None, n
    log_h = (n * math.log(own) + k_prior * math.log(prior_minutes)) / (n + k_prior)
    return max(math.exp(log_h), float(floor_minutes)), own, n


def slot_masses(samples, bandwidth, slot_minutes, n_slots, kernel="epanechnikov", per_sample=None):
    """Kernel-density mass per slot of weighted ``samples`` (not normalised; mass outside the day is lost)."""
    radius, cdf, _density = KERNELS[kernel]
    out = [0.0] * n_slots
    for k, (x, w) in enumerate(samples):
        if per_sample is not None:
            bandwidth = per_sample[k]
        reach = radius * bandwidth
        lo = max(int((x - reach) // slot_minutes), 0)
        hi = min(int((x + reach) // slot_minutes) + 1, n_slots)
        prev = cdf((lo * slot_minutes - x) / bandwidth)
        for i in range(lo, hi):
            cur = cdf(((i + 1) * slot_minutes - x) / bandwidth)
            out[i] += w * (cur - prev)
            prev = cur
    return out


def adaptive_bandwidths(samples, bandwidth, alpha, kernel="epanechnikov", clip=(0.25, 4.0)):
    """Abramson's sample-point bandwidths: ``bandwidth * (pilot(x_i) / G) ** -alpha`` (pilot: the fixed-bandwidth
    estimate, ``G`` its weighted geometric mean at the samples): narrow where the user's arrivals are dense, wide
    at their outliers."""
    density = KERNELS[kernel][2]
    total = sum(w for _x, w in samples)
    pilot = []
    for x, _w in samples:
        pilot.append(sum(w * density((x - y) / bandwidth) for y, w in samples) / (total * bandwidth))
    log_g = sum(w * math.log(p) for (_x, w), p in zip(samples, pilot)) / total
    g = math.exp(log_g)
    return [bandwidth * min(max((p / g) ** -alpha, clip[0]), clip[1]) for p in pilot]


def _loo_densities(samples, bandwidth, kernel="epanechnikov", per_sample=None):
    """Per sample, the density (per minute) of the other samples' kernel estimate at it."""
    density = KERNELS[kernel][2]
    total = sum(w for _x, w in samples)
    out = []
    for i, (x, wi) in enumerate(samples):
        rest = total - wi
        if rest <= 0:
            out.append(0.0)
            continue
        acc = 0.0
        for j, (y, wj) in enumerate(samples):
            if j != i:
                hj = per_sample[j] if per_sample is not None else bandwidth
                acc += wj * density((x - y) / hj) / hj
        out.append(acc / rest)
    return out


def pool_weight(samples, bandwidth, pool_pmf, slot_minutes, k_prior, kernel="epanechnikov", per_sample=None):
    """Share of the pool pmf in the user's pmf (0 < share <= 1): leave-one-out likelihood + Beta prior."""
    if not samples:
        return 1.0
    own = _loo_densities(samples, bandwidth, kernel, per_sample)
    last = len(pool_pmf) - 1
    pool = [pool_pmf[min(max(int(x // slot_minutes), 0), last)] / slot_minutes for x, _w in samples]
    best, best_score = 1.0, None
    for share in _WEIGHT_GRID:
        score = k_prior * math.log(share)
        for (_x, w), o, p in zip(samples, own, pool):
            score += w * math.log(max((1.0 - share) * o + share * p, 1e-300))
        if best_score is None or score > best_score:
            best, best_score = share, score
    return best


def _loo_sorted(xs, ws, bandwidth, density, radius):
    """``_loo_densities`` on samples sorted by minute, visiting only the neighbours inside the kernel's reach."""
    import bisect
    total = sum(ws)
    reach = radius * bandwidth
    n = len(xs)
    out = []
    for i in range(n):
        rest = total - ws[i]
        if rest <= 0:
            out.append(0.0)
            continue
        lo = bisect.bisect_left(xs, xs[i] - reach)
        hi = bisect.bisect_right(xs, xs[i] + reach)
        acc = 0.0
        for j in range(lo, hi):
            if j != i:
                acc += ws[j] * density((xs[i] - xs[j]) / bandwidth)
        out.append(acc / (rest * bandwidth))
    return out


def cv_bandwidth_and_weight(samples, bandwidths, pool_pmf, slot_minutes, k_prior, kernel="epanechnikov"):
    """``(bandwidth, share)`` maximising the leave-one-out likelihood of the user's own arrivals under
    ``(1 - share) * own kernel estimate + share * pool`` (+ Beta prior of ``k_prior`` on the share)."""
    if not samples:
        return bandwidths[0], 1.0
    radius, _cdf, density = KERNELS[kernel]
    ordered = sorted(samples)
    xs = [x for x, _w in ordered]
    ws = [w for _x, w in ordered]
    last = len(pool_pmf) - 1
    pool = [pool_pmf[min(max(int(x // slot_minutes), 0), last)] / slot_minutes for x in xs]
    best = (None, bandwidths[0], 1.0)
    for h in bandwidths:
        own = _loo_sorted(xs, ws, h, density, radius)
        for share in _WEIGHT_GRID:
            score = k_prior * math.log(share)
            for w, o, p in zip(ws, own, pool):
                score += w * math.log(max((1.0 - share) * o + share * p, 1e-300))
            if best[0] is None or score > best[0]:
                best = (score, h, share)
    return best[1], best[2]
