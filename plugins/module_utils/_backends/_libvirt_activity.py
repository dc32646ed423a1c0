# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: who is on a libvirt desktop right now (``LibvirtBackend.activity``).

- Console clients: QEMU's own list of connected VNC / SPICE clients (QMP ``query-vnc`` / ``query-spice`` through
  ``libvirt_qemu.qemuMonitorCommand``). libvirt has no API that lists them (only graphics *events*, which a
  short-lived module process would miss), and the query reads state without changing it. libvirt marks the domain
  ``custom-monitor`` tainted in its log for such a call; nothing else changes.
- Logged-in users: the guest agent (``virDomainGetGuestInfo`` with USERS, i.e. ``guest-get-users``), asked only
  when the agent channel in the live XML says ``state='connected'``, so a guest without an agent never costs a
  timeout.
"""

from __future__ import annotations

import datetime
import json

AGENT_CHANNEL = "org.qemu.guest_agent.0"


def graphics_kinds(root):
    """Graphics types of the live domain XML (``vnc``, ``spice``)."""
    return sorted({g.get("type") for g in root.iter("graphics") if g.get("type") in ("vnc", "spice")})


def agent_connected(root):
    """``None`` without an agent channel, else whether the guest's agent has the channel open."""
    for channel in root.iter("channel"):
        target = channel.find("target")
        if target is not None and target.get("name") == AGENT_CHANNEL:
            return target.get("state") == "connected"
    return None


def qmp_command(kind):
    return json.dumps({"execute": "query-%s" % kind})


def consoles_from_qmp(kind, answer):
    """Clients from the JSON text of ``query-vnc`` / ``query-spice``."""
    info = (json.loads(answer) or {}).get("return") or {}
    clients = info.get("clients") if kind == "vnc" else info.get("channels")
    seen, out = set(), []
    for client in clients or []:
        where = "%s:%s" % (client.get("host", "?"), client.get("port", client.get("service", "?")))
        if where in seen:  # SPICE lists one entry per channel of the same client
            continue
        seen.add(where)
        out.append({"kind": kind, "client": where, "since": None})
    return out


def users_from_guest_info(info):
    """``[{"user", "login_time"}]`` from the typed parameters of ``guestInfo(USERS)``."""
    users = []
    for i in range(int(info.get("user.count", 0))):
        name = info.get("user.%d.name" % i)
        ms = info.get("user.%d.login-time" % i)
        login = (datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                 if ms else None)
        if name:
            users.append({"user": name, "login_time": login})
    return users
