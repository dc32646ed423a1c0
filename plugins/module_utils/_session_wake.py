# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: wake a user's desktop at once, the fast path of a reconnect.

A broker waits for the desktop while the user looks at a spinner, and starting ``ansible-playbook`` costs
seconds, so a process that is already running (the EDA webhook source, holding a backend connection) wakes the
desktop through this and only then hands the rest (hot-plug to full size, recording) to the reconnect playbook.

What it may do is deliberately narrow: bring a desktop to *running* by the lifecycle's own steps (resume a paused
shadow, restore a saved one, cold-boot only one without saved state). It never saves, shrinks, stops or discards
anything, so it cannot release a desktop that is in use and cannot lose saved state: a restore that fails leaves
the saved image where it was and the error says so (``LibvirtBackend.start`` / ``ProxmoxBackend.start``).
"""

from __future__ import annotations

import threading
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.wake_path import wake_path
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import STATE_RUNNING


def find_desktop(backend, user, desktop=None):
    """The ``DesktopFacts`` of the desktop ``user`` connects to.

    ``desktop`` given: it must exist, be a managed shadow and belong to ``user`` (a broker naming someone else's
    desktop is refused, not obeyed). Omitted: the user's only managed desktop.
    """
    if desktop:
        facts = backend.get(desktop)
        if facts is None or not facts.tags:
            raise DesktopNotFound("Desktop %s is not a ShadowDesk desktop on this backend" % desktop, desktop=desktop)
        if facts.user != user:
            raise InvalidInput("Desktop %s belongs to %s, not to %s" % (desktop, facts.user or "nobody", user),
                               desktop=desktop, user=user)
        return facts
    mine = backend.list(user=user)
    if not mine:
        raise DesktopNotFound("User %s has no ShadowDesk desktop on this backend" % user, user=user)
    if len(mine) > 1:
        raise InvalidInput("User %s has %d desktops (%s): the request must name one in 'desktop'"
                           % (user, len(mine), ", ".join(f.name for f in mine)), user=user)
    return mine[0]


def wake(backend, user, desktop=None, clock=time.monotonic):
    """Bring the user's desktop to running; return what was done and how long it took.

    Result: ``{"user", "desktop", "path": hit|paused|saved|cold, "state_before", "steps", "seconds"}``;
    ``seconds`` is from the start of the call until the backend reports the desktop running (the facts are read
    again, not assumed from the calls having returned).
    """
    started = clock()
    facts = find_desktop(backend, user, desktop)
    path, steps = wake_path(facts.state)
    for step in steps:
        getattr(backend, step)(facts.name)
    after = backend.get(facts.name) if steps else facts
    if after is None:
        raise DesktopNotFound("Desktop %s disappeared while it was being woken" % facts.name, desktop=facts.name)
    if after.state != STATE_RUNNING:
        done = " + ".join(steps)
        raise OperationRefused("Desktop %s is %s after %s; expected running" % (facts.name, after.state, done),
                               desktop=facts.name, state=after.state)
    return {"user": user, "desktop": facts.name, "path": path, "state_before": facts.state, "steps": steps,
            "seconds": round(clock() - started, 4)}


class DesktopWaker(object):
    """Holds one backend connection for a long-running process and wakes desktops through it.

    ``backend_factory()`` makes a ``DesktopBackend``; it is made on first use and again after the hypervisor
    dropped the connection (daemon restarted). One wake runs at a time: two brokers racing for one desktop must
    not issue two restores, and the second sees the first's result (a hit). A wake that meets another operation
    on the desktop (``Conflict``, e.g. a disconnect's save still running) is retried until ``timeout``: the user
    wants the desktop back, and the save finishing first only means a restore afterwards.
    """

    def __init__(self, backend_factory, timeout=120.0, retry_interval=0.5, clock=time.monotonic, sleep=time.sleep):
        self._factory = backend_factory
        self._backend = None
        self._desktop_of = {}  # user -> the desktop found last time: a broker naming only the user skips a listing
        self._lock = threading.Lock()
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self._clock = clock
        self._sleep = sleep

    def _connected(self):
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    def close(self):
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def wake(self, user, desktop=None):
        with self._lock:
            started = self._clock()
            deadline = started + self.timeout
            reconnected = False
            while True:
                try:
                    result = wake(self._connected(), user, desktop or self._remembered(user), clock=self._clock)
                except BackendUnavailable:
                    if self._backend is not None:
                        self._backend.close()
                    self._backend = None
                    if reconnected:
                        raise
                    reconnected = True  # one fresh connection: a restarted daemon must not fail the first user
                    continue
                except (Conflict, OperationRefused) as exc:
                    if not _busy(exc) or self._clock() + self.retry_interval > deadline:
                        raise
                    self._sleep(self.retry_interval)
                    continue
                result["seconds"] = round(self._clock() - started, 4)
                self._desktop_of[user] = result["desktop"]
                return result

    def _remembered(self, user):
        """The desktop this user woke last time if it still is theirs (checked, never assumed), else None."""
        name = self._desktop_of.get(user)
        if name is None:
            return None
        facts = self._connected().get(name)
        if facts is None or facts.user != user or not facts.tags:
            del self._desktop_of[user]
            return None
        return name


def _busy(exc):
    """Another operation holds the desktop (a save or a start in progress); waiting is the cure."""
    if isinstance(exc, Conflict):
        return True
    text = str(exc).lower()
    return "state change lock" in text or "locked" in text or "timeout" in text
