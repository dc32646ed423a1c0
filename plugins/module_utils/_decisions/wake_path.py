# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: which path wakes a desktop a user is connecting to, and what it takes. Pure (stdlib only).

The paths, fastest first: ``hit`` (already running: the plan warmed it, nothing to do), ``paused`` (resume: RAM
kept), ``saved`` (restore the saved RAM image; the image is never discarded to get a faster boot) and ``cold``
(no saved state: boot, the last resort). The steps are the lifecycle's own (``lifecycle_steps``), so the fast
path and ``shadow_vm state=running`` can never disagree about how a desktop is woken.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.lifecycle import lifecycle_steps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    STATE_PAUSED, STATE_RUNNING, STATE_SAVED, STATE_SHUTOFF,
)

WAKE_PATHS = ("hit", "paused", "saved", "cold")

_PATH_OF_STATE = {
    STATE_RUNNING: "hit",
    STATE_PAUSED: "paused",
    STATE_SAVED: "saved",
    STATE_SHUTOFF: "cold",
}


def wake_path(state):
    """``(path, steps)`` that take a desktop in power ``state`` to running."""
    try:
        path = _PATH_OF_STATE[state]
    except KeyError:
        raise ValueError("unknown power state %r" % (state,)) from None
    return path, lifecycle_steps(state, "running")
