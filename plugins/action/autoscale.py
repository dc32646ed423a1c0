# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.autoscale (documentation: plugins/modules/autoscale.py).

One task = one round over every desktop of a hypervisor: the policy state of that hypervisor is read from the
history store on the controller, the module runs the round on the task's host (one backend connection, all
desktops), and the ``policy_state`` it returns is written back, so AWX jobs in fresh containers and cron runs
share the policy's memory. The store options never travel to the target. Check mode reads the store and writes
nothing to it (the module shows its decisions and changes nothing). A round that failed for some desktops still
returns the states of the others, and those are kept (a failed desktop's state is returned unchanged).
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._autoscale_store import CONTROLLER_ARGS, hypervisor_key
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import os_error_message

MODULE = "shadowdesk.vdi.autoscale"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        own = self._controller_args({k: module_args.pop(k) for k in list(module_args) if k in CONTROLLER_ARGS})
        if not own["keep_state"]:  # the module's plain contract: policy_state in, policy_state out
            result.update(self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars))
            return result
        if module_args.get("policy_state"):
            raise AnsibleActionFail("policy_state comes from the history store while keep_state is true; "
                                    "set keep_state: false to pass and keep it yourself")
        try:
            key = own["state_key"] or hypervisor_key(module_args, (task_vars or {}).get("inventory_hostname"))
            with self._store(own) as store:
                states, versions = store.load_autoscale_states(key)
            module_args["policy_state"] = states
            round_result = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            result.update(round_result)
            result["stored_state"] = self._keep(own, key, states, versions, result.pop("policy_state", None))
        except ShadowDeskError as exc:
            raise AnsibleActionFail(str(exc), result=dict(exc.details)) from None
        except OSError as exc:  # the controller's data directory (SQLite file)
            raise AnsibleActionFail(os_error_message(exc), result={"path": exc.filename}) from None
        return result

    def _controller_args(self, given):
        validated = ArgumentSpecValidator(CONTROLLER_ARGS).validate(given)
        if validated.error_messages:
            raise AnsibleActionFail("Invalid options for autoscale: %s" % "; ".join(validated.error_messages))
        return json.loads(json.dumps(validated.validated_parameters, default=to_native))

    def _store(self, own):
        return HistoryStore.for_data_dir(own["data_dir"], read_only=self._task.check_mode, **store_options(own))

    def _keep(self, own, key, loaded, versions, states):
        """Write the round's states back (unless check mode, or no round ran), leaving alone what an overlapping
        round of the same hypervisor wrote meanwhile; say what happened to them."""
        kept = {"key": key, "loaded": len(loaded), "saved": [], "dropped": [], "conflicts": [],
                "unchanged": len(loaded)}
        if states is None:
            return dict(kept, note="the round did not run: the stored state is unchanged")
        if self._task.check_mode:
            return dict(kept, note="check mode: the stored state is unchanged")
        with self._store(own) as store:
            kept.update(store.save_autoscale_states(key, states, versions=versions))
        if kept["conflicts"]:
            self._display.warning(
                "another autoscale round of %s wrote the state of %s while this one ran (overlapping runs: run one "
                "round per hypervisor at a time); its newer state was kept" % (key, ", ".join(kept["conflicts"])))
        return kept
