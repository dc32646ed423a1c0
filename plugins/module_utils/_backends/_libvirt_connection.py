# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the one place that opens a libvirt connection and turns libvirt's errors into ``_errors``.

Both the backend (read-write) and the event watcher (``_libvirt_events``, read-only) open their connections here.
libvirt needs an event loop implementation registered before a connection is opened, once per process, running
on its own thread: keepalive probes (how a frozen or dead daemon is noticed) and domain events both go through
it. One process may hold both kinds of connection (the ``hypervisor_events`` EDA source watches events and asks
the backend who owns a desktop), so the loop is registered here, under a lock, exactly once.

Error mapping (no ``libvirtError`` escapes a backend call): no domain -> DesktopNotFound, connection lost ->
BackendUnavailable, wrong state -> Conflict, anything the hypervisor or guest refuses -> OperationRefused (or the
caller's ``refused`` type) with libvirt's own message.
"""

from __future__ import annotations

import contextlib
import threading

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, OperationRefused,
)

KEEPALIVE_COUNT = 3  # unanswered probes after which libvirt closes the connection

# Measured on the container test bed: tc exists, but the kernel lacks sch_sfq (inbound) and act_police (outbound),
# so libvirt's shaping fails live, and a <bandwidth> in the definition even makes the next start fail.
_TC_HINT = (" (libvirt shapes interface bandwidth with tc: htb+sfq for inbound, a police action for outbound; this "
            "host's kernel lacks a module it needs, e.g. sch_sfq or act_police: load them or set the interface's "
            "rate_kib_s to 0)")

_loop_lock = threading.Lock()
_loop_thread = []


def _quiet_errors(_ctx, _err):
    """libvirt prints every error to stderr by default; we report them through _errors instead."""


def client():
    """libvirt-python, with its printing of every error to stderr turned off."""
    lv = _deps.require("libvirt")
    lv.registerErrorHandler(_quiet_errors, None)
    return lv


def ensure_event_loop(lv):
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


def message(exc):
    """libvirt's own text of a libvirtError."""
    return (exc.get_error_message() or str(exc)).strip()


def open_connection(lv, uri, answer_within, read_only=False):
    """A connection to ``uri`` that never hangs on a frozen daemon.

    The open call runs in a helper thread bounded by ``answer_within`` seconds (a frozen libvirtd accepts the
    socket but never answers the open call); then keepalive probes ``answer_within / (KEEPALIVE_COUNT + 1)`` s
    apart make any later call to a frozen or dead daemon fail instead of hanging (libvirt closes the connection
    after KEEPALIVE_COUNT unanswered probes; that needs the event loop, started here)."""
    ensure_event_loop(lv)
    outcome = {}

    def opener():
        try:
            outcome["conn"] = lv.openReadOnly(uri) if read_only else lv.open(uri)
        except lv.libvirtError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=opener, name="libvirt-open", daemon=True)
    thread.start()
    thread.join(answer_within)
    if thread.is_alive():
        raise BackendUnavailable("libvirt at %s did not answer within %g s (is libvirtd frozen or overloaded?)"
                                 % (uri, answer_within), uri=uri)
    if "error" in outcome:
        raise BackendUnavailable("Cannot connect to libvirt at %s: %s" % (uri, message(outcome["error"])), uri=uri)
    conn = outcome.get("conn")
    if conn is None:  # very old bindings return None instead of raising
        raise BackendUnavailable("Cannot connect to libvirt at %s" % uri, uri=uri)
    interval = max(1, int(answer_within // (KEEPALIVE_COUNT + 1)))
    with contextlib.suppress(lv.libvirtError):  # local drivers (test:///) have no keepalive: nothing to bound
        conn.setKeepAlive(interval, KEEPALIVE_COUNT)
    return conn


def connection_lost(lv, exc):
    """Whether a libvirtError means the connection is gone (the next call must open a new one)."""
    return exc.get_error_code() in (lv.VIR_ERR_NO_CONNECT, lv.VIR_ERR_INVALID_CONN, lv.VIR_ERR_AUTH_FAILED) or (
        exc.get_error_domain() == lv.VIR_FROM_RPC)  # incl. "connection closed due to keepalive timeout"


def mapped_error(lv, exc, uri, what, name=None, refused=OperationRefused):
    """The ShadowDeskError for a libvirtError raised while trying to ``what`` ('Cannot <what>: ...')."""
    code = exc.get_error_code()
    text = "Cannot %s%s: %s" % (what, " (desktop %s)" % name if name else "", message(exc))
    details = {"libvirt_error_code": code, "uri": uri}
    if code == lv.VIR_ERR_NO_DOMAIN:
        return DesktopNotFound("Desktop %s does not exist on %s" % (name, uri), **details)
    if connection_lost(lv, exc):
        return BackendUnavailable("Lost the connection to libvirt at %s while trying to %s: %s"
                                  % (uri, what, message(exc)), **details)
    if code == lv.VIR_ERR_OPERATION_INVALID:
        return Conflict(text, **details)
    if "tc qdisc" in text or "tc filter" in text or "TC action" in text:
        text += _TC_HINT
    return refused(text, **details)
