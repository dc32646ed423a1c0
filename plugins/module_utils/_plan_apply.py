# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: apply many due plan actions over one backend connection, each desktop isolated from the others.

One module call per hypervisor connection instead of three per desktop (issue 9): a 1,000-desktop pool is one
task per tick. Each desktop's outcome is its own record; a ShadowDeskError on one desktop is written into that
record and the others carry on. Only a hypervisor that cannot be reached at all stops the batch (every desktop
would fail the same way, so the user gets one clear error at once instead of N timeouts).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.lifecycle import state_after
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_actions import (
    POWER, check_action, planned_move, power_steps, work_order,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (
    current_resources, predicted, resolve_stage, resource_changes, split_already_pending,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, OperationRefused, ShadowDeskError,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import APPLIED_LIVE, APPLIED_PENDING
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import StepTimer

_NOT_DETAILS = ("msg", "failed", "changed", "desktop")


def _label(change):
    return change.field if change.key is None else "%s.%s" % (change.field, change.key)


def _view(facts):
    """What a desktop's diff shows: its power state and current resources."""
    if facts is None:
        return {"state": "absent"}
    return {"state": facts.state, "resources": current_resources(facts).to_dict()}


class _DesktopRun:
    """Applies one action; every field of the record it returns is filled even when it fails half-way."""

    def __init__(self, backend, action, check_mode):
        self.backend = backend
        self.action = action
        self.check_mode = check_mode
        self.timer = StepTimer()
        self.record = {
            "desktop": action.get("desktop"), "user": action.get("user"), "node": action.get("node"),
            "state": action.get("state"), "stage": action.get("stage"), "changed": False, "failed": False,
            "steps": [], "changes": [], "pending": [], "timings": self.timer.timings,
        }

    def run(self, stop_if_unreachable=False):
        try:
            check_action(self.action)
            facts = self.backend.get(self.action["desktop"])
            steps = power_steps(self.action, facts)  # existence and ownership are checked before anything moves
            target = resolve_stage(self.action["stages"], self.action["stage"]) if self.action.get("stage") else None
            self.record["before"] = _view(facts)
            facts = self._place(facts)
            self.record["node"] = facts.node or self.record["node"]
            for part in work_order(self.action):
                facts = self._power(facts, steps) if part == POWER else self._resize(facts, target)
            self.record["after"] = _view(facts)
        except BackendUnavailable as exc:
            if stop_if_unreachable:
                raise
            self._fail(exc)
        except ShadowDeskError as exc:
            self._fail(exc)
        self.record["changed"] = bool(self.record["steps"] or self.record["changes"])
        return self.record

    def _fail(self, exc):
        self.record.update(failed=True, msg=str(exc), error_type=type(exc).__name__,
                           details={k: v for k, v in exc.details.items() if k not in _NOT_DETAILS})

    def _place(self, facts):
        """Move the desktop to the node the plan chose, before it wakes (a shadow is cheapest to move while small).
        When the hypervisor refuses, the desktop wakes where it is and the record says why (``node_kept``)."""
        target = planned_move(self.action, facts)
        if target is None or not self.backend.moves_desktops:
            return facts
        if self.check_mode:
            self.record["steps"].append("migrate")
            return dataclasses.replace(facts, node=target)
        try:
            self.timer.run("migrate", self.backend.migrate, facts.name, target)
        except OperationRefused as exc:
            self.record["node_kept"] = "%s stays on %s, not moved to the planned %s: %s" % (
                facts.name, facts.node, target, exc)
            return facts
        self.record["steps"].append("migrate")
        return self.backend.get(facts.name)

    def _power(self, facts, steps):
        if not steps:
            return facts
        if self.check_mode:
            self.record["steps"] += list(steps)
            return dataclasses.replace(facts, state=state_after(steps, facts.state))
        for step in steps:
            self.timer.run(step, getattr(self.backend, step), facts.name)
            self.record["steps"].append(step)  # what happened so far, should a later step fail
        return self.backend.get(facts.name)

    def _resize(self, facts, target):
        changes = resource_changes(facts, target)
        for change in changes:
            change.mode, change.reason = self.backend.classify(facts, change)
        changes, waiting = split_already_pending(facts, changes)
        self.record["pending"] = [_label(c) for c in waiting]
        if not changes:
            return facts
        if not self.check_mode:
            changes = self.timer.run("resize", self.backend.apply, facts, changes)
        self.record["changes"] = [c.to_dict() for c in changes]
        self.record["pending"] += [_label(c) for c in changes if c.mode == APPLIED_PENDING]
        return _after(facts, changes)


def _after(facts, changes):
    """The facts once ``changes`` took effect, each as its mode says (the running guest gets the live ones, the
    definition all of them). The backend's apply reports the modes it read back, so the batch does not read every
    desktop again (a thousand desktops would mean a thousand more rounds of reads)."""
    live = [c for c in changes if c.mode == APPLIED_LIVE]
    return dataclasses.replace(facts, live=predicted(facts.live, live if facts.is_active else changes),
                               config=predicted(facts.config, changes))


def apply_actions(backend, actions, check_mode=False, workers=8):
    """Apply every action over ``backend``; return one record per action, in the order given.

    The first desktop runs alone (it opens the connection, and a hypervisor that is down fails the batch at once);
    the rest run ``workers`` at a time over the same connection, since Proxmox VE tasks and libvirt saves/restores
    of different desktops proceed in parallel on the hypervisor.
    """
    actions = list(actions)
    if not actions:
        return []
    backend.locate([a.get("desktop") for a in actions if a.get("desktop")])
    records = [None] * len(actions)
    records[0] = _DesktopRun(backend, actions[0], check_mode).run(stop_if_unreachable=True)
    # Actions on one desktop run one after another in one worker: two threads must never work on one desktop
    # (one would read it half-way through the other's save).
    lanes = {}
    for index, action in enumerate(actions[1:], start=1):
        lanes.setdefault(action.get("desktop"), []).append(index)

    def run_lane(indexes):
        for index in indexes:
            records[index] = _DesktopRun(backend, actions[index], check_mode).run()

    if lanes:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            list(pool.map(run_lane, lanes.values()))
    return records


def summarise(records):
    """Counts for the result and the report: desktops, changed, unchanged, failed."""
    failed = [r for r in records if r["failed"]]
    changed = [r for r in records if r["changed"]]
    return {"desktops": len(records), "changed": len(changed), "failed": len(failed),
            "unchanged": len([r for r in records if not r["changed"] and not r["failed"]])}
