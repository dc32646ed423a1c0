# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: one network-shadow round on the controller: the stored traffic aggregates -> forecasts per
(application class, destination) -> reservations with windows (``_decisions/reservations.py``) -> the network plan
file ``<data_dir>/network/plan.json`` that the session flows and the network_shadow role read.

The round is keyed by the hour it runs in: a rerun in the same hour on the same history writes the same plan, so
it reports no change.
"""

from __future__ import annotations

import datetime as _dt
import json
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.reservations import plan_reservations
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import traffic_forecast
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import write_text_atomic
from ansible_collections.shadowdesk.vdi.plugins.module_utils._time import iso_z, to_utc

PLAN_FILE = os.path.join("network", "plan.json")


def network_plan(store, now, services=None, forecast_options=None, reservation_options=None):
    """The network plan for the hours after ``now`` (an aware datetime or ISO string)."""
    origin = to_utc(now, "now").replace(minute=0, second=0, microsecond=0)
    fopts = traffic_forecast.options(forecast_options)
    since = origin - _dt.timedelta(days=7 * fopts["weeks"] + fopts["band_days"] + 1)
    rounds = traffic_forecast.forecast_traffic(store.traffic(since=since), origin, forecast_options)
    reserved = plan_reservations(rounds["forecasts"], services=services, overrides=reservation_options)
    return {
        "generated_at": iso_z(origin),
        "horizon_hours": int(fopts["horizon_hours"]),
        "method": traffic_forecast.METHOD,
        "reservations": reserved["reservations"],
        "skipped": rounds["skipped"] + reserved["skipped"],
        "options": {"forecast": rounds["options"], "reservations": reserved["options"]},
        "forecasts": rounds["forecasts"],
    }


def plan_path(data_dir):
    return os.path.join(data_dir, PLAN_FILE)


def publish(plan, data_dir, dry_run=False):
    """Write the plan unless it is already there unchanged; return (path, changed)."""
    path = plan_path(data_dir)
    text = json.dumps(plan, indent=2, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return path, False
    except FileNotFoundError:
        pass
    if not dry_run:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_text_atomic(path, text)
    return path, True
