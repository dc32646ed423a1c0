# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic forecasts -> reservations with windows; what a desktop holds at a given time."""

from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.reservations import (
    destination_cidrs, options, plan_reservations, reservations_at,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

MB = 1_000_000


def forecast(dest, volume_mb, conns=None, app="video", high_factor=1.5):
    volume = [v * MB for v in volume_mb]
    return {"app_class": app, "destination": dest, "start": "2026-12-08T00:00:00Z", "slot_minutes": 60,
            "bytes": volume, "bytes_high": [v * high_factor for v in volume],
            "connections": conns or [1.0] * len(volume), "connections_high": conns or [1.0] * len(volume)}


QUIET_WITH_A_MORNING_SURGE = [100] * 9 + [2000, 2500] + [100] * 13  # 09:00-11:00 surge


def test_a_surge_becomes_a_window_opened_ahead_with_a_per_connection_rate():
    conns = [1.0] * 9 + [10.0, 10.0] + [1.0] * 13
    plan = plan_reservations([forecast("video-conference", QUIET_WITH_A_MORNING_SURGE, conns)],
                             services={"video-conference": ["192.0.2.0/24"]})
    (res,) = plan["reservations"]
    assert res["name"] == "video:video-conference" and res["destinations"] == ["192.0.2.0/24"]
    assert res["windows"] == [{"start": "2026-12-08T08:45:00Z", "end": "2026-12-08T11:00:00Z"}]
    # the top hour: 2500 MB x 1.5 over 10 connections -> 375 MB/h per connection = 0.833 Mbit/s -> the 1 Mbit floor
    assert res["rate_mbit"] == 1.0
    loud = plan_reservations([forecast("198.51.100.0/24", [10] * 9 + [90000, 90000] + [10] * 13)])
    assert loud["reservations"][0]["rate_mbit"] == pytest.approx(90000 * MB * 1.5 * 8 / 3600 / 1e6, rel=1e-3)


def test_flat_traffic_and_unaddressable_destinations_reserve_nothing():
    plan = plan_reservations([forecast("192.0.2.0/24", [500] * 24),
                              forecast("other-cloud", QUIET_WITH_A_MORNING_SURGE)])
    assert plan["reservations"] == []
    assert [s["destination"] for s in plan["skipped"]] == ["other-cloud"]


def test_the_largest_surges_win_when_there_are_too_many():
    forecasts = [forecast("10.%d.0.0/16" % i, [10] * 9 + [1000 * (i + 1)] * 2 + [10] * 13) for i in range(4)]
    plan = plan_reservations(forecasts, overrides={"max_reservations": 2})
    assert [r["destination"] for r in plan["reservations"]] == ["10.3.0.0/16", "10.2.0.0/16"]
    assert len(plan["skipped"]) == 2 and "max_reservations" in plan["skipped"][0]["reason"]


@pytest.mark.parametrize("now, rate", [("2026-12-08T06:00:00Z", 0.5), ("2026-12-08T08:45:00Z", 4.0),
                                       ("2026-12-08T10:59:59Z", 4.0), ("2026-12-08T11:00:00Z", None)])
def test_what_a_desktop_holds_minimal_before_full_inside_nothing_after(now, rate):
    plan = {"reservations": [{"name": "video:vc", "destinations": ["192.0.2.0/24"], "minimal_mbit": 0.5,
                              "rate_mbit": 4.0, "windows": [{"start": "2026-12-08T08:45:00Z",
                                                             "end": "2026-12-08T11:00:00Z"}]}]}
    held = reservations_at(plan, now)
    if rate is None:
        assert held == []
    else:
        assert held == [{"name": "video:vc", "destinations": ["192.0.2.0/24"], "rate_mbit": rate,
                         "minimal_mbit": rate}]


def test_bad_options_and_times_are_clear_errors():
    with pytest.raises(InvalidInput, match="unknown reservation option"):
        options({"surge": 2})
    with pytest.raises(InvalidInput, match="non-negative"):
        options({"surge_ratio": -1})
    with pytest.raises(InvalidInput, match="above max_rate_mbit"):
        options({"min_rate_mbit": 10, "max_rate_mbit": 5})
    with pytest.raises(InvalidInput, match="naive"):
        reservations_at({"reservations": []}, "2026-12-08T08:00:00")
    assert destination_cidrs("vc", {"vc": "192.0.2.7/24"}) == ["192.0.2.0/24"]
    assert destination_cidrs("not a prefix", {}) is None


def test_reservations_share_out_the_interface_never_exceed_it():
    window = [{"start": "2026-12-08T08:00:00Z", "end": "2026-12-08T10:00:00Z"}]
    plan = {"reservations": [{"name": n, "destinations": ["192.0.2.0/24"], "minimal_mbit": 1, "rate_mbit": r,
                              "windows": window} for n, r in (("a", 90), ("b", 60))]}
    held = reservations_at(plan, "2026-12-08T09:00:00Z", max_mbit=100)
    assert [h["rate_mbit"] for h in held] == [60.0, 40.0]
    assert reservations_at(plan, "2026-12-08T09:00:00Z", max_mbit=1000)[0]["rate_mbit"] == 90
