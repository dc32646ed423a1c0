# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the one event shape every ShadowDesk EDA source emits, and the check of a broker's request.

Every source (broker webhook, libvirt graphics events, Proxmox VE console tasks) puts the same event on the
rulebook's queue, so one rulebook serves them all::

    {"shadowdesk_session": {"action": "connect"|"disconnect", "user", "desktop", "source", "received_at",
                            "broker"?, "fast_path"?, "clients"?, "detail"?, "extra"?}}

Names that travel into a playbook's extra vars are restricted to a safe alphabet: Ansible templates variable
values, so a "user" of ``{{ lookup('pipe', ...) }}`` from a broker must never reach a play.
"""

from __future__ import annotations

import datetime
import json
import re

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

EVENT_KEY = "shadowdesk_session"
ACTIONS = ("connect", "disconnect")
# Letters/digits of any script plus the punctuation of directory logins (alice@corp.example, CORP\alice,
# alice.smith, desk-alice_2). No braces, percent, quotes, slashes or control characters.
NAME_RE = re.compile(r"^[^\W_][\w.@+\\-]{0,127}$")
BROKER_RE = re.compile(r"^[\w .:@+-]{1,64}$")
MAX_EXTRA_BYTES = 4096
KNOWN_FIELDS = ("user", "action", "desktop", "broker")


def _name(value, field, required):
    if value is None or value == "":
        if required:
            raise InvalidInput("'%s' is required" % field, field=field)
        return None
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InvalidInput("'%s' must be a name of at most 128 letters, digits and . _ @ + - \\ (got %s)"
                           % (field, json.dumps(value)[:80]), field=field)
    return value


def parse_request(body):
    """Check a broker's JSON request body (bytes) and return ``{user, action, desktop, broker, extra}``.

    Raises InvalidInput with a message fit for the broker's logs (it is sent back in the 400 answer).
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("The body is not JSON: %s" % exc) from None
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object like {\"user\": \"alice\", \"action\": \"connect\"}")
    action = data.get("action")
    if action not in ACTIONS:
        raise InvalidInput("'action' must be one of %s (got %s)" % (", ".join(ACTIONS), json.dumps(action)[:40]),
                           field="action")
    broker = data.get("broker")
    if broker is not None and (not isinstance(broker, str) or not BROKER_RE.match(broker)):
        raise InvalidInput("'broker' must be a short label (letters, digits, space . : @ + -)", field="broker")
    extra = {k: v for k, v in data.items() if k not in KNOWN_FIELDS}
    if len(json.dumps(extra)) > MAX_EXTRA_BYTES:
        raise InvalidInput("Fields other than user/action/desktop/broker are limited to %d bytes" % MAX_EXTRA_BYTES)
    return {"user": _name(data.get("user"), "user", True), "action": action,
            "desktop": _name(data.get("desktop"), "desktop", False), "broker": broker, "extra": extra}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def session_event(action, user, desktop, source, received_at=None, **fields):
    """The event put on the rulebook queue. ``fields`` with a value of None are left out.

    ``received_at`` is when the source learnt of it (ISO-8601 UTC), the time the flows record the session at.
    """
    if action not in ACTIONS:
        raise ValueError("unknown session action %r" % (action,))
    payload = {"action": action, "user": user, "desktop": desktop, "source": source,
               "received_at": received_at or now_iso()}
    payload.update((k, v) for k, v in fields.items() if v is not None)
    return {EVENT_KEY: payload}
