"""A user's own arrival spread: plug-in bandwidth, kernel mass per slot, the pool's share."""

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrival_spread as sp


def tight(n=40):
    return [(240.0 + (k * 13) % 21 - 10, 1.0) for k in range(n)]      # 08:00 +- 10 min after a 04:00 cut


def loose(n=40):
    return [(120.0 + (k * 53) % 300, 1.0) for k in range(n)]            # 06:00 .. 11:00


def test_spread_is_robust_to_one_outlier():
    assert sp.robust_spread(tight()) < 8
    assert sp.robust_spread(tight() + [(900.0, 1.0)]) < 9
    assert sp.robust_spread(loose()) > 60
    assert sp.robust_spread([(10.0, 1.0)]) == 0.0


def test_bandwidth_follows_the_user_and_leans_on_the_prior_with_little_history():
    narrow, own, n = sp.plugin_bandwidth(tight(), 60.0, 2.0)
    assert n == pytest.approx(40) and own < 5 and narrow < 6
    wide = sp.plugin_bandwidth(loose(), 60.0, 2.0)[0]
    assert wide > 8 * narrow
    few = sp.plugin_bandwidth(tight(3), 60.0, 2.0)[0]
    assert narrow < few < 60
    # never wider than the prior, however wide the user's own spread
    very_loose = [(60.0 * k, 1.0) for k in range(20)]
    bandwidth, own, _n = sp.plugin_bandwidth(very_loose, 60.0, 2.0)
    assert own > 60 and bandwidth == pytest.approx(60.0)
    assert sp.plugin_bandwidth([], 60.0, 2.0) == (60.0, None, 0.0)
    # weights count: other weekdays at half weight make a smaller effective sample
    assert sp.effective_n([(1.0, 1.0), (2.0, 0.5), (3.0, 0.5)]) == pytest.approx(4.0 / 1.5)


def test_slot_masses_stay_near_the_arrivals():
    masses = sp.slot_masses(tight(), 2.0, 15, 96)
    assert sum(masses) == pytest.approx(40)
    assert masses[14] == 0.0 and masses[18] == 0.0    # 07:30 and 08:30 after a 04:00 cut hold nothing
    assert masses[15] > 10 and masses[16] > 10
    # a wide bandwidth reaches further; mass beyond the day is lost
    assert sp.slot_masses(tight(), 30.0, 15, 96)[12] > 0
    assert sum(sp.slot_masses([(2.0, 1.0)], 30.0, 15, 96)) < 1


def test_pool_share_is_small_for_a_punctual_user_and_large_with_little_history():
    narrow = sp.plugin_bandwidth(tight(), 60.0, 2.0)[0]
    punctual = sp.pool_share(tight(), narrow, 60.0, 8.0)
    assert punctual < 0.02
    # an irregular user of the same history length: a bandwidth of the pool's, the pool weighs as 8 arrivals
    wide = sp.plugin_bandwidth(loose(), 60.0, 2.0)[0]
    assert sp.pool_share(loose(), wide, 60.0, 8.0) > 5 * punctual
    assert sp.pool_share(loose(), 60.0, 60.0, 8.0) == pytest.approx(8.0 / 48.0)
    # two arrivals: the bandwidth is still near the pool's, so is the share
    few = tight(2)
    assert sp.pool_share(few, sp.plugin_bandwidth(few, 60.0, 2.0)[0], 60.0, 8.0) > 0.3
    assert sp.pool_share([], 60.0, 60.0, 8.0) == 1.0
    assert sp.pool_share(tight(), narrow, 60.0, 0.0) == 0.0
