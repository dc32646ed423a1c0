# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: one autoscale round over every managed desktop of a hypervisor, through ONE backend connection.

A plain function so the ``autoscale`` module (cron / AWX every minute) and a long-running process (a rulebook
action, a daemon) call the same thing: give it a backend, the policy state of the previous round and the time;
it measures every running desktop over one shared interval (or takes the given metrics), decides
(``_decisions.autoscale_desktop``), turns the target into ``ResourceChange`` objects with the same rules as
``desktop_resources`` (``_decisions.resources``), applies them unless ``check_mode``, and returns the per-desktop
results and the state to keep for the next round.

A failure on one desktop (utilisation unreadable, hot-plug refused) is reported for that desktop, whose stored
state stays as it was; the other desktops are still handled.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.base import measured
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale_desktop import decide_desktop
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (
    current_resources, predicted, resource_changes, split_already_pending,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import DesktopNotFound, ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_CONFIG, APPLIED_LIVE, APPLIED_PENDING, STATE_RUNNING, Resources,
)


def _label(change):
    return change.field if change.key is None else "%s.%s" % (change.field, change.key)


def _cpu_held(facts):
    live = facts.live
    return float(live.cpu_limit) if live.cpu_limit else float(live.vcpus or 1)


def host_rooms(backend, desktops, config):
    """What each node can still give: ``{node: {"cpus", "memory_mib"}}`` (None for a node of unknown capacity).

    CPU: the host's CPUs times ``cpu_overcommit`` minus what the running managed desktops hold (quota or vCPUs).
    Memory: the host's free memory minus ``memory_reserve_mib``.
    """
    rooms = {}
    for node in sorted({d.node for d in desktops if d.state == STATE_RUNNING}, key=str):
        capacity = backend.host_capacity(node)
        if not capacity:
            rooms[node] = None
            continue
        held = sum(_cpu_held(d) for d in desktops if d.node == node and d.state == STATE_RUNNING)
        rooms[node] = {"cpus": max(capacity["cpus"] * config.cpu_overcommit - held, 0.0),
                       "memory_mib": max(capacity["free_memory_mib"] - config.memory_reserve_mib, 0.0)}
    return rooms


def autoscale_round(backend, config, states, now, check_mode=False, names=None, stages=None, metrics=None,
                    interval=1.0):
    """Run one round. ``states``: ``{desktop: state}`` from the previous round; ``stages``: ``{desktop:
    Resources}`` floors from the plan's current stage; ``metrics``: ``{desktop: utilisation dict}`` to use instead
    of measuring (an event carried them). Returns ``{"changed", "desktops": [...], "states": {...}, "failed":
    [names]}``; ``states`` holds every managed desktop's state (the states of desktops no longer managed here are
    dropped), so it replaces what the caller kept."""
    desktops = sorted(backend.list(), key=lambda d: d.name)
    rooms = host_rooms(backend, desktops, config)  # every running desktop holds its share, selected or not
    known = {d.name for d in desktops}
    if names:
        unknown = sorted(set(names) - known)
        if unknown:
            raise DesktopNotFound("No managed desktop is named %s (managed here: %s)."
                                  % (", ".join(unknown), ", ".join(sorted(known)) or "none"), desktops=unknown)
        desktops = [d for d in desktops if d.name in set(names)]
    # a desktop gone from the hypervisor takes its state with it; unselected desktops keep theirs
    results, new_states, failed = [], {k: v for k, v in (states or {}).items() if k in known}, []
    # every running desktop without given readings measured over the same interval: one wait for the round
    readings = backend.utilisation_many([d.name for d in desktops if d.state == STATE_RUNNING
                                         and (metrics or {}).get(d.name) is None], interval)
    for facts in desktops:
        given = (metrics or {}).get(facts.name)
        entry = _one(backend, facts, config, (states or {}).get(facts.name), now, check_mode,
                     (stages or {}).get(facts.name), readings.get(facts.name) if given is None else given, rooms)
        results.append(entry)
        if entry.get("error"):
            failed.append(facts.name)
        elif "state" in entry:
            new_states[facts.name] = entry.pop("state")
    return {"changed": any(r["changed"] for r in results), "desktops": results, "states": new_states,
            "failed": failed}


def _one(backend, facts, config, state, now, check_mode, stage, utilisation, rooms):
    entry = {"name": facts.name, "state_before": facts.state, "changed": False, "changes": [], "live": [],
             "config": [], "pending": [], "decisions": [], "skipped": None, "warnings": []}
    try:
        if facts.state != STATE_RUNNING:
            decision = decide_desktop(facts, None, state, config, now)
        else:
            decision = decide_desktop(facts, measured(utilisation), state, config, now, stage=stage,
                                      host_room=rooms.get(facts.node))
        entry.update(decision.to_dict())
        entry["state"] = decision.state
        target = decision.target
        if not decision.changes:
            return entry
        changes = resource_changes(facts, target)
        for change in changes:
            change.mode, change.reason = backend.classify(facts, change)
        changes, waiting = split_already_pending(facts, changes)
        before = current_resources(facts)
        if changes and not check_mode:
            changes = backend.apply(facts, changes)
        entry.update(
            changed=bool(changes), changes=[c.to_dict() for c in changes],
            live=[_label(c) for c in changes if c.mode == APPLIED_LIVE],
            config=[_label(c) for c in changes if c.mode == APPLIED_CONFIG],
            pending=[_label(c) for c in changes + waiting if c.mode == APPLIED_PENDING],
            diff={"before": before.to_dict(), "after": predicted(before, changes).to_dict()})
        _consume(rooms, facts, target)
    except ShadowDeskError as exc:
        entry.pop("state", None)  # nothing learned or changed this round: keep the stored state
        entry.update(error=str(exc), error_type=type(exc).__name__)
    return entry


def _consume(rooms, facts, target):
    """Growth given to one desktop is no longer room for the next ones on the same node."""
    room = rooms.get(facts.node)
    if not room:
        return
    if target.vcpus is not None or target.cpu_limit is not None:
        after = Resources(vcpus=target.vcpus, cpu_limit=target.cpu_limit)
        held_after = after.cpu_limit if after.cpu_limit else float(after.vcpus or facts.live.vcpus or 1)
        room["cpus"] = max(room["cpus"] - (held_after - _cpu_held(facts)), 0.0)
    if target.memory_mib is not None:
        room["memory_mib"] = max(room["memory_mib"] - (target.memory_mib - float(facts.live.memory_mib or 0)), 0.0)
