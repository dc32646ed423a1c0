# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: what an allocation plan wants at a given time. Pure (stdlib + _errors).

A user's plan is a list of steps ``{"at", "state", "stage"}``. The desired (state, stage) at time ``t`` is the
last step with ``at <= t``, so applying "what is desired now" every few minutes is idempotent and catches up on a
missed run. One exception keeps the plan from fighting the user: a *release* step (back to ``saved``/``paused``)
is only enforced for ``grace_minutes`` after it fell due. After that a desktop the user woke by logging in outside
the forecast is left alone until the plan's next step.
"""

from __future__ import annotations

import datetime as _dt

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = _dt.timezone.utc
RELEASE_STATES = ("saved", "paused", "stopped")
DEFAULT_GRACE_MINUTES = 15


def parse_time(value, what="time"):
    """An ISO-8601 string (``...Z`` or with an offset) or a datetime -> timezone-aware UTC datetime."""
    return _time.to_utc(value, what)


def format_time(moment):
    """UTC datetime -> ``2026-11-23T07:30:00Z`` (whole seconds)."""
    return _time.iso_z(moment)


def desired_step(steps, now):
    """The last step with ``at <= now`` (steps in any order), or None before the first step."""
    best = None
    best_at = None
    for step in steps:
        at = parse_time(step["at"], "step time")
        if at <= now and (best_at is None or at >= best_at):
            best, best_at = step, at
    return best


def is_release(step):
    return step.get("state") in RELEASE_STATES


def session_woken_at(steps, step):
    """When the session that ``step`` belongs to was woken: the first wake step after the release before it.

    A planned release means "if the user has not come by then"; the release guard counts a user as having come
    only for connects after this moment. None when no wake step precedes ``step``."""
    at = parse_time(step["at"], "step time")
    woken = None
    for other in sorted(steps, key=lambda s: parse_time(s["at"], "step time")):
        other_at = parse_time(other["at"], "step time")
        if other_at > at or (other_at == at and is_release(other)):
            break
        if is_release(other):
            woken = None
        elif woken is None:
            woken = other["at"]
    return woken


def due_actions(plan, now, grace_minutes=DEFAULT_GRACE_MINUTES):
    """What to apply at ``now``: one action per user whose plan wants something now, sorted by user.

    Each action is ``{"user", "desktop", "node", "state", "stage", "stages", "at", "release", "woken_at"}``.
    """
    now = parse_time(now, "now")
    if grace_minutes < 0:
        raise InvalidInput("grace_minutes must be >= 0, got %r" % (grace_minutes,))
    grace = _dt.timedelta(minutes=grace_minutes)
    actions = []
    for user in sorted(plan.get("users") or {}):
        entry = plan["users"][user]
        step = desired_step(entry.get("steps") or [], now)
        if step is None:
            continue
        if is_release(step) and now - parse_time(step["at"]) > grace:
            continue
        actions.append({
            "user": user,
            "desktop": entry["desktop"],
            "node": entry.get("node"),
            "state": step["state"],
            "stage": step["stage"],
            "stages": entry["stages"],
            "at": step["at"],
            "release": is_release(step),
            "woken_at": session_woken_at(entry.get("steps") or [], step),
        })
    return actions


FLOOR_FIELDS = ("vcpus", "cpu_limit", "memory_mib")


def stage_floors(plan, now):
    """``{desktop: {"vcpus", "cpu_limit", "memory_mib"}}``: each planned desktop's current stage (of the last step
    at or before ``now``), the floor the autoscale loop never goes below. A desktop before its first step has none.
    Unlike ``due_actions`` a release step counts however long ago it fell due: a desktop its user woke after the
    release is running at the stage the plan left it (the shadow's), and that is its floor."""
    now = parse_time(now, "now")
    floors = {}
    for user in sorted(plan.get("users") or {}):
        entry = plan["users"][user]
        step = desired_step(entry.get("steps") or [], now)
        if step is None or not entry.get("desktop"):
            continue
        stage = (entry.get("stages") or {}).get(step["stage"]) or {}
        floors[entry["desktop"]] = {k: stage[k] for k in FLOOR_FIELDS if stage.get(k) is not None}
    return floors
