#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: the work is done on the controller by plugins/action/traffic_forecast.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_forecast
short_description: Forecast the pool's traffic per destination and plan the network shadow's reservations
version_added: 0.3.0
description:
  - Reads the anonymous hourly traffic aggregates of the history store (M(shadowdesk.vdi.traffic_import)),
    forecasts volume and concurrent connections per application class and destination for the next hours with an
    80 % band, and turns the surges into bandwidth reservations with windows. Publishes them as
    C(<data_dir>/network/plan.json), which the session flows (C(shadowdesk_network_shadow)) and the
    P(shadowdesk.vdi.network_shadow#role) role read; the C(shadowdesk.vdi.network_reservations) filter says what
    a desktop holds at a given time.
  - "The forecast (method C(seasonal-profile)): the median of the same hour over the last days blended with the
    same hour of the week over the last weeks; its band comes from its own recent errors. It was chosen over
    Prophet on real traffic (C(benchmarks/README.md), Network forecast). A destination with less than
    C(min_history_days) of history is skipped and listed."
  - "A surge: hours whose forecast volume is at least C(surge_ratio) times the destination's median hour of the
    horizon and whose upper band reaches C(min_aggregate_mbit). Its window opens C(lead_minutes) early. The rate a
    desktop reserves is what one connection carried at the band's top (upper-band volume over concurrent
    connections), within C(min_rate_mbit) and C(max_rate_mbit). Before a window a desktop holds C(minimal_mbit);
    after the last one, nothing."
  - Only destinations with addresses are reserved (a prefix, or a name in O(services)); the others are listed in
    RV(plan.skipped) with the reason.
  - A rerun within the same hour on the same history writes the same plan and reports C(changed=false).
  - Runs on the controller and only reads the store.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._history_store
options:
  now:
    description: The time the plan starts from (ISO-8601 with an offset or C(Z)); default now. Floored to the hour.
    type: str
  services:
    description: Named destinations, C(name -> [CIDR, ...]), as given to M(shadowdesk.vdi.traffic_import).
    type: dict
    default: {}
  forecast_options:
    description:
      - Forecast settings, C(weeks) (4), C(days) (3), C(day_weight) (0.25), C(level_hours) (24), C(level_weight)
        (0), C(band_days) (28), C(band_scale) (1), C(horizon_hours) (24), C(min_history_days) (14).
    type: dict
    default: {}
  reservation_options:
    description:
      - Reservation settings, C(surge_ratio) (2), C(min_aggregate_mbit) (1), C(lead_minutes) (15),
        C(min_rate_mbit) (1), C(max_rate_mbit) (1000), C(minimal_mbit) (1), C(max_reservations) (8).
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: Computes the plan and reports whether it would change; writes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
seealso:
  - module: shadowdesk.vdi.traffic_import
  - module: shadowdesk.vdi.network_shadow
"""

EXAMPLES = r"""
- name: Plan the next day's reservations (hourly from cron / an AWX schedule)
  shadowdesk.vdi.traffic_forecast:
    services:
      video-conference: [192.0.2.0/24]
    reservation_options:
      lead_minutes: 30
  register: network_plan

- name: What alice's desktop holds now
  ansible.builtin.debug:
    msg: "{{ lookup('ansible.builtin.file', network_plan.path) | from_json | shadowdesk.vdi.network_reservations }}"
"""

RETURN = r"""
plan:
  description: The published plan without the per-destination forecast series.
  returned: success
  type: dict
  contains:
    generated_at:
      description: The hour the plan starts from.
      type: str
      sample: "2026-12-08T00:00:00Z"
    horizon_hours:
      description: Hours forecast.
      type: int
      sample: 24
    reservations:
      description: Reservations, the largest surges first.
      type: list
      elements: dict
      sample: [{"name": "video:video-conference", "app_class": "video", "destination": "video-conference",
                "destinations": ["192.0.2.0/24"], "minimal_mbit": 1.0, "rate_mbit": 6.5,
                "windows": [{"start": "2026-12-08T08:45:00Z", "end": "2026-12-08T11:00:00Z"}]}]
    skipped:
      description: Destinations not forecast or not reserved, with the reason.
      type: list
      elements: dict
      sample: [{"app_class": "web", "destination": "other", "reason": "less than 14 days of history"}]
    options:
      description: The forecast and reservation settings used.
      type: dict
      sample: {"forecast": {"weeks": 4}, "reservations": {"surge_ratio": 2.0}}
    method:
      description: The forecast method.
      type: str
      sample: seasonal-profile
path:
  description: Path of the published plan.
  returned: success
  type: str
  sample: /home/ops/.local/share/shadowdesk/network/plan.json
forecasts:
  description: How many (application class, destination) pairs were forecast.
  returned: success
  type: int
  sample: 12
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: "12 destinations forecast, 2 reservations, 3 skipped; plan /home/ops/.local/share/shadowdesk/network/plan.json"
"""
