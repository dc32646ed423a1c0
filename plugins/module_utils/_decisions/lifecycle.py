# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: which lifecycle steps take a shadow desktop from its power state to the wanted one. Pure."""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF,
)

WANTED_STATES = ("present", "running", "paused", "saved", "stopped", "absent")

# (current, wanted) -> steps. ``None`` as current means the desktop does not exist.
# Why these paths: a saved shadow is woken by ``start`` (restore, < 1 s), never by a cold boot; pausing a saved
# shadow restores it first; ``stopped`` keeps a saved image out of the way only through an explicit discard.
_STEPS = {
    (STATE_SHUTOFF, STATE_RUNNING): ["start"],
    (STATE_SHUTOFF, STATE_PAUSED): ["start", "pause"],
    (STATE_SHUTOFF, STATE_SAVED): ["start", "save"],
    (STATE_RUNNING, STATE_PAUSED): ["pause"],
    (STATE_RUNNING, STATE_SAVED): ["save"],
    (STATE_RUNNING, STATE_SHUTOFF): ["stop"],
    (STATE_PAUSED, STATE_RUNNING): ["resume"],
    (STATE_PAUSED, STATE_SAVED): ["save"],
    (STATE_PAUSED, STATE_SHUTOFF): ["stop"],
    (STATE_SAVED, STATE_RUNNING): ["start"],
    (STATE_SAVED, STATE_PAUSED): ["start", "pause"],
    (STATE_SAVED, STATE_SHUTOFF): ["discard_saved_state"],
}

_WANTED_POWER = {
    "running": STATE_RUNNING,
    "paused": STATE_PAUSED,
    "saved": STATE_SAVED,
    "stopped": STATE_SHUTOFF,
}


def lifecycle_steps(current_state, wanted):
    """Return the ordered step names (backend method names plus ``create``/``remove``) for the transition.

    ``current_state`` is a power state or ``None`` (absent). ``present`` accepts any power state.
    """
    if wanted not in WANTED_STATES:
        raise ValueError("unknown wanted state %r" % wanted)
    if wanted == "absent":
        if current_state is None:
            return []
        steps = ["stop"] if current_state in (STATE_RUNNING, STATE_PAUSED) else []
        return steps + ["remove"]
    steps = []
    if current_state is None:
        steps.append("create")
        current_state = STATE_SHUTOFF
    if wanted == "present":
        return steps
    target = _WANTED_POWER[wanted]
    if current_state == target:
        return steps
    return steps + list(_STEPS[(current_state, target)])


def state_after(steps, current_state):
    """The power state the steps lead to (for check mode's predicted facts)."""
    state = current_state
    for step in steps:
        state = {
            "create": STATE_SHUTOFF, "start": STATE_RUNNING, "resume": STATE_RUNNING, "pause": STATE_PAUSED,
            "save": STATE_SAVED, "stop": STATE_SHUTOFF, "discard_saved_state": STATE_SHUTOFF, "remove": None,
        }[step]
    return state
