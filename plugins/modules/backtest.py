#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the work is done on the controller by plugins/action/backtest.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: backtest
short_description: Replay a login history and score ShadowDesk against simple warm-up policies
version_added: 0.1.0
description:
  - Runs on the controller. Scores the last O(weeks) of a session history; everything before is training. Every
    O(refit_days) the per-user forecasts are fitted on the sessions before that moment only, and the following days
    are planned from them.
  - 'Policies in one run: C(shadowdesk) (arrival policy: warm where the login hazard from the per-user, per-weekday
    arrival profile blended with the Prophet forecast exceeds the threshold of O(risk); released at logout),
    C(always_on), C(on_connect) (started at login: a hit only when the user is already in another session),
    C(schedule) (fixed local hours, O(schedule)), C(weekday_window) (per user and weekday: earliest login - 30 min
    to latest logout + 30 min of the previous 4 weeks).'
  - A login is a hit when the desktop was already warm at that instant. Warm hours are hours pre-warmed or in a
    session. Per policy the report has C(hit_rate), C(warm_hours), C(warm_share) (of always-on), C(idle_warm_hours)
    and C(cost); C(shadowdesk_curve) repeats ShadowDesk for every risk in O(risks).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._fit_engine
options:
  history:
    description:
      - Session history CSV (optionally gzipped), either generic C(user,start,end[,tz_offset_min]) or the
        git-activity sessions format (C(user,day,first_ts_utc,last_ts_utc,n_commits,tz_offset_min)).
    type: path
    required: true
  report:
    description: Where to write the JSON report (none = only returned).
    type: path
  weeks:
    description: Number of final weeks scored.
    type: int
    default: 4
  refit_days:
    description: Days between refits of the forecasts.
    type: int
    default: 7
  risk:
    description: Risk knob of the C(shadowdesk) policy (0 cautious .. 1 bold).
    type: float
    default: 0.3
  risks:
    description: Risk settings of C(shadowdesk_curve); default 0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.8.
    type: list
    elements: float
  lead_minutes:
    description: Minutes a desktop needs to be ready; warm windows start this much earlier.
    type: int
    default: 15
  slot_minutes:
    description: Forecast slot length.
    type: int
    default: 15
    choices: [5, 10, 15, 20, 30, 60]
  schedule:
    description: Fixed hours of the C(schedule) policy, in each user's local time.
    type: dict
    suboptions:
      days:
        description: Weekdays (0 = Monday).
        type: list
        elements: int
        default: [0, 1, 2, 3, 4]
      start:
        description: Start, C(HH:MM).
        type: str
        default: "07:00"
      end:
        description: End, C(HH:MM).
        type: str
        default: "19:00"
  window_weeks:
    description: Weeks of history of the C(weekday_window) policy.
    type: int
    default: 4
  window_margin_minutes:
    description: Margin of the C(weekday_window) policy before the earliest login and after the latest logout.
    type: int
    default: 30
  price:
    description: 'Price of a warm desktop-hour: C(per_hour) (default 1.0) and optionally C(by_hour_utc), 24
      multipliers.'
    type: dict
  country:
    description: Public holidays of this country in the forecasts.
    type: str
  users:
    description: Only these users.
    type: list
    elements: str
attributes:
  check_mode:
    description: Runs the backtest and returns the report; writes no file.
    support: full
  diff_mode:
    description: Not supported.
    support: none
  action:
    description: Runs on the controller as an action plugin.
    support: full
seealso:
  - module: shadowdesk.vdi.forecast
"""

EXAMPLES = r"""
- name: Backtest the last 4 weeks of a history
  shadowdesk.vdi.backtest:
    history: /data/sessions.csv.gz
    report: /tmp/backtest.json
    schedule: {days: [0, 1, 2, 3, 4], start: "08:00", end: "18:00"}
"""

RETURN = r"""
report:
  description: The backtest report.
  returned: success
  type: dict
  contains:
    policies:
      description: Per policy C(hit_rate), C(logins), C(hits), C(warm_hours), C(warm_share), C(idle_warm_hours),
        C(session_hours), C(cost).
      type: dict
    shadowdesk_curve:
      description: C(risk), C(hit_rate), C(warm_hours), C(warm_share) of ShadowDesk per risk setting.
      type: list
    shadowdesk_alt_curve:
      description: The same curve for the occupancy policy (Prophet occupancy alone), C(policy) and C(curve).
      type: dict
    curve_at_baseline_share:
      description: Per baseline (and C(schedule+release), C(weekday_window+release)) its C(hit_rate), C(warm_share)
        and the hit rate of C(shadowdesk_curve) at that warm share (C(shadowdesk_hit_rate), interpolated).
      type: dict
    period:
      description: The scored period and refits.
      type: dict
path:
  description: The report file written.
  returned: when O(report) is set
  type: str
"""
