# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.backtest (documentation: plugins/modules/backtest.py).

Controller only: replays a session history with ``_engine/backtest.py`` and writes the JSON report.
"""

from __future__ import annotations

import json
import os


from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import backtest as bt
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import write_text_atomic
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import FIT_ENGINE_ARGS
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    history=dict(type="path", required=True),
    report=dict(type="path"),
    weeks=dict(type="int", default=4),
    refit_days=dict(type="int", default=7),
    risk=dict(type="float", default=0.3),
    risks=dict(type="list", elements="float"),
    lead_minutes=dict(type="int", default=15),
    slot_minutes=dict(type="int", default=15, choices=[5, 10, 15, 20, 30, 60]),
    schedule=dict(type="dict", options=dict(
        days=dict(type="list", elements="int", default=[0, 1, 2, 3, 4]),
        start=dict(type="str", default="07:00"),
        end=dict(type="str", default="19:00"),
    )),
    window_weeks=dict(type="int", default=4),
    window_margin_minutes=dict(type="int", default=30),
    price=dict(type="dict"),
    country=dict(type="str"),
    users=dict(type="list", elements="str"),
    **FIT_ENGINE_ARGS
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        rows = bt.load_history(os.path.expanduser(args["history"]))
        report = bt.run_backtest(
            rows, weeks=args["weeks"], refit_days=args["refit_days"], risk=args["risk"], risks=args["risks"],
            lead_minutes=args["lead_minutes"], slot_minutes=args["slot_minutes"], schedule=args["schedule"],
            window_weeks=args["window_weeks"], window_margin_minutes=args["window_margin_minutes"],
            price=args["price"], country=args["country"], users=args["users"], engine=args["engine"],
            workers=args["workers"], scheduler_address=args["scheduler_address"])
        report["history"] = args["history"]
        result = {"report": report, "changed": False}
        if args["report"]:
            path = os.path.expanduser(args["report"])
            result["path"] = path
            if not self._task.check_mode:
                write_text_atomic(path, json.dumps(report, indent=1, sort_keys=True))
                result["changed"] = True
        return result
