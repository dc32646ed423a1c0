# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: who is on a Proxmox VE desktop right now, from API answers (``ProxmoxBackend.activity``). Pure.

PVE starts a worker task for every console connection (``vncproxy`` for noVNC/VNC, ``spiceproxy`` for SPICE,
``termproxy`` for xterm.js on the serial console) and the task runs as long as the connection does, so the VM's
*running* tasks of those types are its connected console clients. ``agent/get-users`` answers
``{"result": [{"user", "login-time" (seconds since the epoch, float), "domain"?}]}``.
"""

from __future__ import annotations

import datetime

CONSOLE_TASK_TYPES = ("vncproxy", "spiceproxy", "termproxy", "vncshell")


def _iso(seconds):
    if seconds in (None, ""):
        return None
    return datetime.datetime.fromtimestamp(float(seconds), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def consoles_of(tasks):
    """Console clients from ``GET nodes/{node}/tasks?source=active&vmid=...`` items."""
    return [{"kind": t.get("type"), "client": t.get("user") or "?", "since": _iso(t.get("starttime"))}
            for t in tasks or [] if t.get("type") in CONSOLE_TASK_TYPES and not t.get("endtime")]


def agent_enabled(conf):
    """Whether the VM config enables the guest agent (``agent: 1`` or ``agent: enabled=1,...``)."""
    value = str(conf.get("agent") or "0")
    for part in value.split(","):
        key, _sep, val = part.partition("=")
        if (not _sep and key in ("1", "on", "yes", "true")) or (key == "enabled" and val in ("1", "on", "yes", "true")):
            return True
    return False


def agent_users_of(answer):
    users = (answer or {}).get("result") or []
    return [{"user": u.get("user"), "login_time": _iso(u.get("login-time"))} for u in users if u.get("user")]
