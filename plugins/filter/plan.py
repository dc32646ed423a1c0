# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over allocation plans: ``due_actions``, ``apply_batches``, ``plan_floors``."""

from __future__ import annotations

# Documentation: plugins/filter/<name>.yml (ansible-doc -t filter shadowdesk.vdi.NAME).

import datetime as _dt
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_actions import batches as _batches
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import due_actions as _due
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import stage_floors as _floors
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_schema
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError


def _plain(value):
    """Ansible's lazy/tagged containers -> plain dicts/lists/str (via JSON) for jsonschema."""
    return json.loads(json.dumps(value, default=to_native))


def _at_plan(name, decide, plan, now, *args):
    """Validate ``plan`` (a dict or its JSON/YAML text) and ``now``, then ``decide(plan, now, *args)``; every
    failure is a filter error named after the filter."""
    try:
        if isinstance(plan, (str, bytes)):
            text = to_native(plan)
            fmt = "json" if text.lstrip().startswith("{") else "yaml"
            plan = plan_schema.loads(text, fmt, "the plan")
        elif isinstance(plan, dict):
            plan = plan_schema.validate_plan(_plain(plan), "the plan")
        else:
            raise AnsibleFilterError("%s expects a plan dict or its JSON/YAML text, got %s"
                                     % (name, type(plan).__name__))
        if isinstance(now, _dt.datetime):
            now = now.isoformat()
        return decide(plan, to_native(now), *args)
    except ShadowDeskError as exc:
        raise AnsibleFilterError("%s: %s" % (name, exc)) from None
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("%s: %s" % (name, to_native(exc))) from None


def due_actions(plan, now, grace_minutes=15):
    return _at_plan("due_actions", lambda p, n: _due(p, n, int(grace_minutes)), plan, now)


def plan_floors(plan, now):
    return _at_plan("plan_floors", _floors, plan, now)


def apply_batches(actions, node_connections=None):
    if not isinstance(actions, list):
        raise AnsibleFilterError("apply_batches expects the list due_actions returns, got %s" % type(actions).__name__)
    if node_connections is not None and not isinstance(node_connections, dict):
        raise AnsibleFilterError("apply_batches: node_connections must be a dict of node -> connection options")
    try:
        return _batches(_plain(actions), _plain(node_connections or {}))
    except ShadowDeskError as exc:
        raise AnsibleFilterError("apply_batches: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"due_actions": due_actions, "apply_batches": apply_batches, "plan_floors": plan_floors}
