# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: libvirt's domain events (graphics clients, lifecycle) for a long-running watcher.

libvirt pushes events over its connection once a process has registered an event loop implementation, which
must happen before the connection is opened and only once per process; the loop then runs on its own thread
(``virEventRunDefaultImpl``). Callbacks run on that thread, so they only hand plain tuples to ``emit`` and never
call libvirt themselves. The connection is read-only: watching never changes a domain.

``emit(kind, domain_name, what, detail)`` receives
- ``("graphics", name, "connect"|"initialize"|"disconnect", client_id)``; ``client_id`` is the client's remote
  address and port, the same for the three phases of one viewer;
- ``("lifecycle", name, event_word, detail_number)`` with event words from ``LIFECYCLE_WORDS``.
"""

from __future__ import annotations

import threading

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import BackendUnavailable

GRAPHICS_PHASES = {0: "connect", 1: "initialize", 2: "disconnect"}
LIFECYCLE_WORDS = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed", 5: "stopped",
                   6: "shutdown", 7: "pmsuspended", 8: "crashed"}

_loop_lock = threading.Lock()
_loop_thread = []


def _ensure_event_loop(lv):
    """Register libvirt's default event loop and run it on a daemon thread (once per process)."""
    with _loop_lock:
        if _loop_thread:
            return
        lv.virEventRegisterDefaultImpl()

        def run():
            while True:
                lv.virEventRunDefaultImpl()

        thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        thread.start()
        _loop_thread.append(thread)


class LibvirtEventWatcher(object):
    """Watches every domain of ``uri``; ``open()`` (again after ``alive()`` turned false) and ``close()``."""

    def __init__(self, uri, emit):
        self.uri = uri
        self.emit = emit
        self._lv = _deps.require("libvirt")
        self._conn = None
        self._callbacks = []

    def open(self):
        lv = self._lv
        _ensure_event_loop(lv)
        self.close()
        try:
            conn = lv.openReadOnly(self.uri)
            self._callbacks = [
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_GRAPHICS, self._on_graphics, None),
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None),
            ]
            conn.setKeepAlive(5, 3)  # notice a dead daemon within ~20 s even when no event comes
        except lv.libvirtError as exc:
            raise BackendUnavailable("Cannot watch libvirt events at %s: %s" % (self.uri, exc), uri=self.uri) from None
        self._conn = conn

    def alive(self):
        if self._conn is None:
            return False
        try:
            return bool(self._conn.isAlive())
        except self._lv.libvirtError:
            return False

    def close(self):
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for callback_id in self._callbacks:
            try:
                conn.domainEventDeregisterAny(callback_id)
            except self._lv.libvirtError:
                pass  # the connection is gone already; nothing left to deregister
        self._callbacks = []
        try:
            conn.close()
        except self._lv.libvirtError:
            pass

    # libvirt's callback signatures (positional, called on the event thread)
    def _on_graphics(self, _conn, dom, phase, _local, remote, _auth_scheme, _subject, _opaque):
        client = "%s:%s" % ((remote or {}).get("node", "?"), (remote or {}).get("service", "?"))
        self.emit("graphics", dom.name(), GRAPHICS_PHASES.get(phase, str(phase)), client)

    def _on_lifecycle(self, _conn, dom, event, detail, _opaque):
        self.emit("lifecycle", dom.name(), LIFECYCLE_WORDS.get(event, str(event)), detail)
