# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: how one due plan action (``due_actions``) is applied to its desktop. Pure (stdlib + _decisions).

The order matters and is the same on every backend: a release shrinks the desktop to its stage *before* it is
saved or paused (so it is never saved at full size), a wake restores it *before* it is raised (a saved desktop
cannot be hot-plugged). A plan never discards a saved session and never touches another user's desktop.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.lifecycle import lifecycle_steps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import RELEASE_STATES
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, DesktopNotFound, InvalidInput

PLAN_STATES = ("running", "paused") + RELEASE_STATES
RESIZE = "resize"
POWER = "power"


def work_order(action):
    """``[RESIZE, POWER]`` for a release, ``[POWER, RESIZE]`` otherwise; without a stage only POWER."""
    if not action.get("stage"):
        return [POWER]
    return [RESIZE, POWER] if action.get("state") in RELEASE_STATES else [POWER, RESIZE]


def check_action(action):
    """Raise InvalidInput for an action that cannot be applied whatever the desktop looks like."""
    if not action.get("desktop"):
        raise InvalidInput("A plan action has no desktop: %r" % (action,))
    state = action.get("state")
    if state is not None and state not in PLAN_STATES:
        raise InvalidInput("Action for %s wants state %r; a plan sets one of %s"
                           % (action["desktop"], state, ", ".join(PLAN_STATES)), desktop=action["desktop"])
    if action.get("stage") and action["stage"] not in (action.get("stages") or {}):
        raise InvalidInput("Action for %s wants stage %r, which is not in its stages (%s)"
                           % (action["desktop"], action["stage"], ", ".join(sorted(action.get("stages") or {}))),
                           desktop=action["desktop"])


def planned_move(action, facts):
    """The node the desktop must move to before its step, or None.

    A wake on a node other than the desktop's is a move to the node the plan chose (the least-contended one); a
    release never moves a desktop (its user is leaving: moving it would only cost time), and an action without a
    planned node, or for a desktop whose node is unknown, stays where it is.
    """
    planned = action.get("node")
    if facts is None or not planned or not facts.node or planned == facts.node:
        return None
    if action.get("release") or action.get("state") in RELEASE_STATES:
        return None
    return planned


def power_steps(action, facts):
    """The lifecycle steps that give ``facts`` the action's power state, refusing what a plan must never do."""
    if facts is None:
        raise DesktopNotFound("Desktop %s does not exist; a plan does not create desktops (use shadow_vm)."
                              % action["desktop"], desktop=action["desktop"])
    if action.get("user") and facts.user and facts.user != action["user"]:
        raise Conflict("Desktop %s belongs to user %s, not %s; refusing to manage it."
                       % (facts.name, facts.user, action["user"]), desktop=facts.name, owner=facts.user)
    if not action.get("state"):
        return []
    steps = lifecycle_steps(facts.state, action["state"])
    if "discard_saved_state" in steps:
        raise Conflict("Desktop %s holds a saved session; a plan never discards it (stop it with shadow_vm "
                       "discard_saved_state=true if that is really wanted)." % facts.name, desktop=facts.name)
    return steps


def batches(actions, node_connections=None):
    """Group due actions into one batch per hypervisor connection.

    ``node_connections`` maps a planned node to connection options that override the default connection (a libvirt
    host's ``uri``, say). Actions whose nodes have the same overrides (or none) share one batch, so a Proxmox VE
    cluster reached through one API endpoint is one batch and each libvirt host is one. Returns
    ``[{"connection": overrides, "nodes": [...], "actions": [...]}]`` in the order the connections first appear.
    """
    node_connections = node_connections or {}
    groups = {}
    for action in actions:
        overrides = node_connections.get(action.get("node")) or {} if action.get("node") else {}
        if not isinstance(overrides, dict):
            raise InvalidInput("The connection options of node %s must be a dict, got %r"
                               % (action.get("node"), overrides))
        key = tuple(sorted((k, repr(v)) for k, v in overrides.items()))
        group = groups.setdefault(key, {"connection": dict(overrides), "nodes": [], "actions": []})
        if action.get("node") and action["node"] not in group["nodes"]:
            group["nodes"].append(action["node"])
        group["actions"].append(action)
    return list(groups.values())
