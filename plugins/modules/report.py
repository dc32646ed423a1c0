#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the work is done on the controller by plugins/action/report.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: report
short_description: Write the operator's HTML report of a plan window (hit rate, warm hours, per-user plots)
version_added: 0.1.0
description:
  - Runs on the controller. Reads the allocation plan, the forecasts it was made from, and the sessions of the
    plan's window from the history store, and writes one self-contained HTML page (inline CSS and SVG plots; no
    external URL, so it opens offline).
  - "Pool-wide: the hit rate (sessions that started while the desktop was planned C(warm) or C(full)) and the
    desktop-hours kept above the shadow stage, against keeping every desktop up (always-on) and a fixed schedule
    (weekdays 07:00-19:00 UTC), each with the hit rate it would have had on the same sessions."
  - Per user one plot with the forecast probability and its band, the planned stages, the actual sessions and a
    hit or miss mark at each login.
  - The page depends only on its inputs, so a rerun with the same plan and history reports C(changed=false).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._history_store
options:
  plan:
    description: Plan file (JSON or YAML). Default C(<data_dir>/plans/latest.json).
    type: path
  forecasts:
    description:
      - Forecasts file. Default C(<data_dir>/forecasts/latest.json) when it exists (else the plots show no
        probability line).
    type: path
  dest:
    description: Where the page is written. Default C(<data_dir>/reports/report.html).
    type: path
attributes:
  check_mode:
    description: Scores and returns the summary; writes no file.
    support: full
  diff_mode:
    description: Returns the size of the page before and after.
    support: full
  action:
    description: Runs on the controller as an action plugin.
    support: full
seealso:
  - module: shadowdesk.vdi.allocation_plan
  - module: shadowdesk.vdi.forecast
"""

EXAMPLES = r"""
- name: Report on the latest plan
  shadowdesk.vdi.report:
  register: report

- name: Say where it is
  ansible.builtin.debug:
    msg: "{{ report.dest }}: hit rate {{ report.pool.hit_rate }}"
"""

RETURN = r"""
dest:
  description: The page written (or that would be, in check mode).
  returned: success
  type: str
  sample: /var/lib/shadowdesk/reports/report.html
pool:
  description:
    - Pool-wide numbers of the window. C(hit_rate) and C(fixed_hit_rate) are fractions (null without sessions);
      hours are desktop-hours above the shadow stage.
  returned: success
  type: dict
  sample: {users: 3, sessions: 2, hits: 2, misses: 0, hit_rate: 1.0, warm_hours: 21.2, fixed_hours: 36.0,
           fixed_hit_rate: 1.0, always_on_hours: 72.0}
"""
