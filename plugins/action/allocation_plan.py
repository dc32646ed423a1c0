# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.allocation_plan (documentation: plugins/modules/allocation_plan.py).

Runs on the controller only: builds the plan with ``_engine/plans.py``, renders the summary, and publishes
both under ``<data_dir>/plans`` (``_engine/plan_files.py``). Nothing is sent to the managed host.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_files, plan_inputs, plans
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.measured_times import measured_times
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS, store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

# The default summary template ships in the collection with the forecast role (roles/ is copied verbatim by
# ansible-galaxy, plugins/module_utils is not the place for data files); found relative to this file.
DEFAULT_TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "roles", "forecast", "templates", "plan_summary.md.j2")

POLICY_OPTIONS = {
    "risk": "float", "safety_factor": "float", "apply_interval_minutes": "float", "merge_gap_minutes": "float",
    "max_prewarm_minutes": "float", "release_grace_minutes": "float", "pause_gap_minutes": "float",
    "headroom": "float", "cost_weight": "float",
}
ARGUMENT_SPEC = dict(
    forecasts=dict(type="raw", required=True),
    desktops=dict(type="dict", required=True),
    nodes=dict(type="list", elements="dict", required=True),
    profiles=dict(type="raw"),
    prices=dict(type="dict"),
    measured=dict(type="dict"),
    measured_from_history=dict(type="bool", default=True),
    data_dir=dict(type="path"),
    format=dict(type="str", default="json", choices=["json", "yaml"]),
    now=dict(type="str"),
    summary_template=dict(type="path"),
    **dict(HISTORY_STORE_ARGS, **{name: dict(type=kind) for name, kind in POLICY_OPTIONS.items()})
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        data_dir = os.path.expanduser(args["data_dir"] or default_data_dir())
        forecasts = args["forecasts"]
        if isinstance(forecasts, str):
            forecasts = plan_inputs.read_forecasts_file(os.path.expanduser(forecasts), data_dir)
        measured, by_node = self._measured(args, data_dir)
        plan = plans.build_plan(
            forecasts, args["desktops"], args["nodes"], profiles=args["profiles"], prices=args["prices"],
            measured=measured, measured_by_node=by_node, options={k: args[k] for k in POLICY_OPTIONS},
            now=args["now"])
        template_path = args["summary_template"] or DEFAULT_TEMPLATE
        try:
            with open(template_path, encoding="utf-8") as handle:
                template = handle.read()
        except OSError as exc:
            raise AnsibleActionFail("cannot read the summary template %s: %s"
                                    % (template_path, exc.strerror or exc)) from None
        summary = plan_files.render_summary(plan, template, "summary template %s" % template_path)
        published = plan_files.publish(plan, summary, data_dir, args["format"], check_mode=self._task.check_mode)
        for warning in published.pop("warnings") + [
                "%s: %s" % (u, w) for u, e in sorted(plan["users"].items()) for w in e.get("warnings", [])] + [
                "%s: %s" % (u, why) for u, why in sorted(plan.get("unplanned", {}).items())]:
            self._display.warning(warning)
        published.update(plan=plan, summary=summary)
        return published

    def _measured(self, args, data_dir):
        """Wake / hot-plug times: the caller's ``measured`` wins, then the reconnects measured by the session flows
        (pool-wide and per node), then the defaults."""
        explicit = {k: v for k, v in (args["measured"] or {}).items() if v is not None}
        if not args["measured_from_history"]:
            return explicit, {}
        with HistoryStore.for_data_dir(data_dir, read_only=True, **store_options(args)) as store:
            history = measured_times(store.wake_timings())
        return (dict(history["pool"], **explicit),
                {node: dict(times, **explicit) for node, times in history["nodes"].items() if times})
