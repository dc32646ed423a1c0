#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the work is done on the controller by plugins/action/forecast.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: forecast
short_description: Forecast when each user will be connected (Prophet, per user, in local time)
version_added: 0.1.0
description:
  - Runs on the controller. For every user in the history store (or O(users)), forecasts the probability of being
    connected in each slot of the next O(horizon_hours), with an uncertainty band.
  - One Prophet model per user on the user's local wall clock (each session's own UTC offset), with a weekly
    seasonality, separate daily shapes for workdays and weekends, public holidays of O(country), and calendar busy
    time as a regressor for users who consented to calendar import.
  - Fitted models are stored in C(<data_dir>/models/<user>.json) with C(<user>.meta.json) (history fingerprint,
    data range, fit time, library versions). An unchanged history reuses the model; a changed one is refitted,
    warm-started from the previous parameters.
  - Users whose history spans less than two weeks get a fallback forecast (the pool's average occupancy by local
    weekday and hour), marked C(method=fallback) with a C(reason).
  - Writes C(<data_dir>/forecasts/forecasts-<now>.json) and C(latest.json), the input of
    M(shadowdesk.vdi.allocation_plan).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._fit_engine
  - shadowdesk.vdi._history_store
options:
  now:
    description: Forecast start (ISO-8601 UTC); only sessions that started before it are used. Default now.
    type: str
  horizon_hours:
    description: How far ahead to forecast.
    type: int
    default: 48
  slot_minutes:
    description: Slot length of the output. Models are fitted hourly and interpolated.
    type: int
    default: 15
    choices: [5, 10, 15, 20, 30, 60]
  users:
    description: Only these users (default every user in the store).
    type: list
    elements: str
  country:
    description: Country code of public holidays (for example V(US), V(FR)); default none.
    type: str
  options:
    description:
      - Advanced model options, for example C(history_weeks) (12), C(min_history_days) (14), C(fit_slot_minutes)
        (60), C(daily_order) (8), C(weekly_order) (4), C(band_z) (1.2816), C(max_model_age_hours) (168).
    type: dict
    default: {}
attributes:
  check_mode:
    description: Fits and returns the forecasts; stores no model, writes no file and creates or migrates no history
      database.
    support: full
  diff_mode:
    description: Not supported.
    support: none
  action:
    description: Runs on the controller as an action plugin.
    support: full
seealso:
  - module: shadowdesk.vdi.allocation_plan
  - module: shadowdesk.vdi.backtest
"""

EXAMPLES = r"""
- name: Forecast the next 48 hours for everybody in the store
  shadowdesk.vdi.forecast:
    country: FR

- name: Fit on a Dask cluster
  shadowdesk.vdi.forecast:
    engine: dask
    scheduler_address: tcp://dask-scheduler:8786
"""

RETURN = r"""
forecasts:
  description: One forecast per user.
  returned: success
  type: list
  elements: dict
  sample:
    - user: alice
      method: prophet
      reason: fitted on 12 weeks
      generated_at: "2026-11-22T21:00:00Z"
      slot_minutes: 15
      start: "2026-11-22T21:00:00Z"
      p: [0.0, 0.01]
      p_low: [0.0, 0.0]
      p_high: [0.02, 0.03]
      history: {first: "2026-08-03T07:58:00Z", last: "2026-11-20T08:11:00Z", sessions: 71, fingerprint: 3f2a}
counts:
  description: How many forecasts were C(prophet), C(fallback), C(reused) models, and C(errors).
  returned: success
  type: dict
errors:
  description: Users whose forecast failed, with the error (the others are still returned).
  returned: success
  type: list
  elements: dict
profiles:
  description:
    - Per-user resource profiles (p95 of busy vCPUs and used memory by UTC hour) from the utilisation samples in
      the history store (recorded by the C(shadowdesk.vdi.session_recorder) callback from
      M(shadowdesk.vdi.desktop_info) results). The input O(shadowdesk.vdi.allocation_plan#module:profiles).
  returned: success
  type: list
  elements: dict
  sample:
    - {user: alice, vcpus: 2, memory_mib: 1536, samples: 96, hourly: {"9": {cpu_p95: 1.6, memory_p95_mib: 1402}}}
path:
  description: The forecasts file written (none when unchanged or in check mode).
  returned: success
  type: str
latest:
  description: C(<data_dir>/forecasts/latest.json).
  returned: success
  type: str
"""
