# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.traffic_forecast (documentation: plugins/modules/traffic_forecast.py).

Controller-side: reads the anonymous traffic aggregates of the history store, runs the network-shadow round
(``_engine/traffic_round.py``) and publishes ``<data_dir>/network/plan.json``. The store is only read.
"""

from __future__ import annotations

import datetime as _dt
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import traffic_round
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS, store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    now=dict(type="str"),
    services=dict(type="dict", default={}),
    forecast_options=dict(type="dict", default={}),
    reservation_options=dict(type="dict", default={}),
    **HISTORY_STORE_ARGS
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        data_dir = os.path.expanduser(args["data_dir"] or default_data_dir())
        now = args["now"] or _dt.datetime.now(_dt.timezone.utc)
        store = HistoryStore.for_data_dir(data_dir, read_only=True, **store_options(args))
        try:
            plan = traffic_round.network_plan(store, now, services=args["services"],
                                              forecast_options=args["forecast_options"],
                                              reservation_options=args["reservation_options"])
        finally:
            store.close()
        path, changed = traffic_round.publish(plan, data_dir, dry_run=self._task.check_mode)
        summary = {k: v for k, v in plan.items() if k != "forecasts"}
        return {
            "changed": changed,
            "plan": summary,
            "path": path,
            "forecasts": len(plan["forecasts"]),
            "msg": "%d destinations forecast, %d reservations, %d skipped; plan %s" % (
                len(plan["forecasts"]), len(plan["reservations"]), len(plan["skipped"]), path),
        }
