# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: may a desktop be released (shrunk, paused, saved or stopped) now? Pure (stdlib + _errors).

Every path that takes resources away from a desktop asks this first: the apply_plan role (planned releases), the
disconnect flow, and the batched plan module. The answer combines what the hypervisor itself sees with the
session events of the history store:

- ``activity`` (from ``DesktopBackend.activity``): ``consoles`` = graphics / console clients connected right now
  (libvirt: QEMU's VNC/SPICE clients of the live domain; Proxmox VE: running vncproxy/spiceproxy/termproxy tasks
  of the VM), ``agent_users`` = users logged in according to the guest agent (with their login time), ``agent`` =
  whether the agent answered.
- ``session`` (from the history store): ``connected`` (an open session), ``last_connect``, ``last_disconnect``.

Rules (why: a planned release means "if the user has not come by then"; once the user has come, the desktop is
released by the disconnect, after ``grace_minutes``):
1. A connected console client always keeps the desktop (both purposes): someone is looking at it.
2. An open session in the history store keeps it.
3. ``purpose="planned"``: if the user came since the desktop was woken (``woken_at``) -- a connect event, or a
   guest-agent login newer than the wake -- the planned release is not this plan's to make: it waits for a
   disconnect plus the grace. A guest-agent login OLDER than the wake does not count: a restored desktop carries
   the session its user had when it was saved, and reconnecting users do not log in again.
4. ``purpose="disconnect"``: released once the grace after the last disconnect has passed.
"""

from __future__ import annotations

import datetime as _dt

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import format_time, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

PURPOSES = ("planned", "disconnect")


def _time_or_none(value, what):
    return parse_time(value, what) if value else None


def _console_reason(console):
    where = console.get("client") or "a client"
    return "%s console connected from %s" % (console.get("kind") or "graphics", where)


def _fresh_logins(activity, since):
    """Guest-agent logins at or after ``since`` (all of them when ``since`` is unknown)."""
    fresh = []
    for login in activity.get("agent_users") or []:
        at = _time_or_none(login.get("login_time"), "agent login time")
        if since is None or (at is not None and at >= since):
            fresh.append(login)
    return fresh


def release_verdict(activity, session, now, purpose="planned", woken_at=None, grace_minutes=0):
    """``{"allowed": bool, "in_use": bool, "reasons": [...], "release_at": iso or None}``.

    ``in_use`` says whether someone is on the desktop right now (console client or open session); ``release_at``
    is the earliest moment a disconnect-driven release may happen when it is known (last disconnect + grace).
    """
    if purpose not in PURPOSES:
        raise InvalidInput("purpose must be one of %s, got %r" % (", ".join(PURPOSES), purpose))
    if grace_minutes is None or grace_minutes < 0:
        raise InvalidInput("grace_minutes must be >= 0, got %r" % (grace_minutes,))
    now = parse_time(now, "now")
    activity, session = activity or {}, session or {}
    woken = _time_or_none(woken_at, "woken_at")
    last_connect = _time_or_none(session.get("last_connect"), "last_connect")
    last_disconnect = _time_or_none(session.get("last_disconnect"), "last_disconnect")
    grace = _dt.timedelta(minutes=grace_minutes)

    reasons = [_console_reason(c) for c in activity.get("consoles") or []]
    if session.get("connected"):
        reasons.append("the history store has an open session (connected %s)" % (session.get("last_connect") or "?"))
    in_use = bool(reasons)
    release_at = last_disconnect + grace if last_disconnect is not None else None

    if not in_use:
        came = []
        if purpose == "planned":
            if last_connect is not None and (woken is None or last_connect >= woken):
                came.append("connected at %s" % format_time(last_connect))
            came += ["logged in (guest agent) at %s as %s" % (l.get("login_time") or "?", l.get("user") or "?")
                     for l in _fresh_logins(activity, woken)]
        if purpose == "disconnect" or came:
            if release_at is None:
                reasons.append("the user came (%s) and no disconnect is recorded since: the disconnect releases it"
                               % "; ".join(came) if came else "no disconnect is recorded")
            elif last_connect is not None and last_connect > last_disconnect:
                reasons.append("the user reconnected at %s after the disconnect at %s"
                               % (format_time(last_connect), format_time(last_disconnect)))
            elif now < release_at:
                reasons.append("disconnected at %s: released after the %g min grace, at %s"
                               % (format_time(last_disconnect), grace_minutes, format_time(release_at)))
    return {"allowed": not reasons, "in_use": in_use, "reasons": reasons,
            "release_at": format_time(release_at) if release_at is not None else None}
