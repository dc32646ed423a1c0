# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.report (documentation: plugins/modules/report.py).

Controller only: reads the plan, the forecasts and the window's sessions from the history store, and writes one
self-contained HTML page (``_engine/report.py``) into the data directory.
"""

from __future__ import annotations

import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_inputs, plan_schema
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import report as report_engine
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir, write_text_atomic
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS, store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    plan=dict(type="path"),
    forecasts=dict(type="path"),
    dest=dict(type="path"),
    **HISTORY_STORE_ARGS
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        data_dir = os.path.expanduser(args["data_dir"] or default_data_dir())
        plan_path = os.path.expanduser(args["plan"] or os.path.join(data_dir, "plans", "latest.json"))
        if not os.path.exists(plan_path):
            raise InvalidInput("No plan at %s: run playbooks/forecast.yml first, or set plan" % plan_path)
        plan = plan_schema.read_plan(plan_path)
        forecasts_path = os.path.expanduser(args["forecasts"] or os.path.join(data_dir, "forecasts", "latest.json"))
        forecasts = []  # without forecasts the report still scores the plan; the probability lines are left out
        if args["forecasts"] or os.path.exists(forecasts_path):
            forecasts = plan_inputs.read_forecasts_file(forecasts_path, data_dir)
        window = plan["window"]
        with HistoryStore.for_data_dir(data_dir, read_only=True, **store_options(args)) as store:
            sessions = store.sessions(since=window["start"], until=window["end"])
        text = report_engine.render(forecasts, plan, sessions)
        dest = os.path.expanduser(args["dest"] or os.path.join(data_dir, "reports", "report.html"))
        before = None
        if os.path.exists(dest):
            with open(dest, encoding="utf-8") as handle:
                before = handle.read()
        changed = before != text
        if changed and not self._task.check_mode:
            write_text_atomic(dest, text)
        pool = report_engine.score(plan, sessions)["pool"]
        summary = {k: pool[k] for k in ("users", "sessions", "hits", "misses", "hit_rate", "warm_hours",
                                        "fixed_hours", "fixed_hit_rate", "always_on_hours")}
        return {"changed": changed, "dest": dest, "pool": summary,
                "diff": {"before": {"dest": dest, "bytes": len(before or "")},
                         "after": {"dest": dest, "bytes": len(text)}}}
