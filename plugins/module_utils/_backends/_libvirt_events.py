# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: libvirt's domain events (graphics clients, lifecycle) for a long-running watcher.

libvirt pushes events over its connection once the process runs an event loop, registered before the connection
is opened and once per process (``_libvirt_connection`` does both, for the backend too); the loop runs on its own
thread. Callbacks run on that thread, so they only hand plain tuples to ``emit`` and never call libvirt
themselves. The connection is read-only: watching never changes a domain.

``emit(kind, domain_name, what, detail)`` receives
- ``("graphics", name, "connect"|"initialize"|"disconnect", client_id)``; ``client_id`` is the client's remote
  address and port, the same for the three phases of one viewer;
- ``("lifecycle", name, event_word, detail_number)`` with event words from ``LIFECYCLE_WORDS``.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_connection as connection
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import BackendUnavailable

GRAPHICS_PHASES = {0: "connect", 1: "initialize", 2: "disconnect"}
LIFECYCLE_WORDS = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed", 5: "stopped",
                   6: "shutdown", 7: "pmsuspended", 8: "crashed"}

ANSWER_WITHIN = 20.0  # seconds: a daemon that stops answering is noticed within this, even when no event comes


class LibvirtEventWatcher(object):
    """Watches every domain of ``uri``; ``open()`` (again after ``alive()`` turned false) and ``close()``."""

    def __init__(self, uri, emit):
        self.uri = uri
        self.emit = emit
        self._lv = connection.client()
        self._conn = None
        self._callbacks = []

    def open(self):
        lv = self._lv
        self.close()
        conn = connection.open_connection(lv, self.uri, ANSWER_WITHIN, read_only=True)
        self._conn = conn  # close() deregisters what was registered, should the second registration fail
        try:
            for event, callback in ((lv.VIR_DOMAIN_EVENT_ID_GRAPHICS, self._on_graphics),
                                    (lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle)):
                self._callbacks.append(conn.domainEventRegisterAny(None, event, callback, None))
        except lv.libvirtError as exc:
            self.close()
            raise BackendUnavailable("Cannot watch libvirt events at %s: %s" % (self.uri, connection.message(exc)),
                                     uri=self.uri) from None

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
