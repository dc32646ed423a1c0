# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: when console/graphics clients of a desktop make a connect or a disconnect. Pure (stdlib only).

A desktop can have several viewers at once (a user's laptop and a helpdesk shadow session; the Proxmox web
console opened twice). The user is *connected* while at least one client is attached, so a session starts when
the count goes from 0 to more and ends when it drops back to 0; a second viewer coming or going is no event.
Both hypervisor sources use this: libvirt counts graphics clients from its graphics events, Proxmox VE counts
running ``vncproxy``/``spiceproxy`` tasks per VM on every poll.
"""

from __future__ import annotations


def client_transitions(before, after):
    """Events from the client counts per desktop before and after.

    ``before``/``after``: ``{desktop_key: number_of_clients}`` (a missing key is 0). Returns a list of
    ``(desktop_key, "connect"|"disconnect", clients_after)`` sorted by key, connects and disconnects only.
    """
    events = []
    for key in sorted(set(before) | set(after), key=str):
        was, now = int(before.get(key, 0) or 0), int(after.get(key, 0) or 0)
        if was <= 0 < now:
            events.append((key, "connect", now))
        elif now <= 0 < was:
            events.append((key, "disconnect", 0))
    return events


class ClientCounter(object):
    """Client counts fed one client at a time (libvirt graphics events), giving the same transitions.

    A client is identified by what the hypervisor says about it (e.g. its remote address and port), so a
    disconnect of a client never seen connecting (a port scanner closing before the handshake, or one attached
    before the watcher started) cannot end a session on its own.
    """

    def __init__(self):
        self._clients = {}  # desktop_key -> set of client ids

    def count(self, key):
        return len(self._clients.get(key, ()))

    def attach(self, key, client):
        """A client completed its handshake; returns the transitions it causes."""
        before = {key: self.count(key)}
        self._clients.setdefault(key, set()).add(client)
        return client_transitions(before, {key: self.count(key)})

    def detach(self, key, client):
        """A client went away; returns the transitions it causes (none for an unknown client)."""
        clients = self._clients.get(key)
        if not clients or client not in clients:
            return []
        before = {key: len(clients)}
        clients.discard(client)
        if not clients:
            del self._clients[key]
        return client_transitions(before, {key: self.count(key)})

    def forget(self, key):
        """The desktop stopped: its clients are gone with it, without a session event (the flows see the stop)."""
        self._clients.pop(key, None)
