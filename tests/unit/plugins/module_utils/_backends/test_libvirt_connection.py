# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that opens libvirt connections (``_libvirt_connection``), used by the backend and the event
watcher, against libvirt's in-memory ``test:///default`` driver."""

from __future__ import annotations

import gc
import queue
import threading

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_events import (  # noqa: E402
    LibvirtEventWatcher,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import BackendUnavailable  # noqa: E402

DOMAIN = ("<domain type='test'><name>sd-events</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
          "<os><type>hvm</type></os></domain>")


def event_loops():
    return [t for t in threading.enumerate() if t.name == "libvirt-events"]


def test_backend_and_watcher_share_one_event_loop_and_the_watcher_hears_the_backend():
    """libvirt allows one event loop per process; the hypervisor_events source holds both connections."""
    gc.collect()
    events = queue.Queue()
    backend = LibvirtBackend({"uri": "test:///default"})
    watcher = LibvirtEventWatcher("test:///default", lambda *item: events.put(item))
    try:
        watcher.open()
        assert watcher.alive()
        dom = backend.conn.defineXML(DOMAIN)
        assert len(event_loops()) == 1
        seen = []
        while ("lifecycle", "sd-events", "defined") not in seen:
            seen.append(events.get(timeout=30)[:3])  # a missing event fails here instead of hanging
        dom.undefine()
        del dom
    finally:
        watcher.close()
        backend.close()
        gc.collect()
    assert not watcher.alive()


def test_watcher_of_a_daemon_that_is_not_there_is_backend_unavailable():
    watcher = LibvirtEventWatcher("qemu+unix:///system?socket=/nonexistent/libvirt-sock", lambda *item: None)
    with pytest.raises(BackendUnavailable, match="Cannot connect to libvirt at qemu\\+unix"):
        watcher.open()
    assert not watcher.alive()
