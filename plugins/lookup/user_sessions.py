# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: user_sessions
short_description: What the ShadowDesk history store knows about users' live sessions
version_added: 0.2.0
author:
  - ShadowDesk engineers (@shadowdesk)
description:
  - For each user given, whether a session is open at O(now), and the last connect and disconnect before O(now),
    counting only live sources (the C(shadowdesk.vdi.session_recorder) callback and the session flows).
  - The input of M(shadowdesk.vdi.desktop_activity)'s O(shadowdesk.vdi.desktop_activity#module:session), used by the
    C(shadowdesk.vdi.apply_plan) and C(shadowdesk.vdi.disconnect) roles before they release a desktop.
  - A missing store means nothing is known (no session), not an error. Nothing is created or migrated.
options:
  _terms:
    description: User names.
    required: true
    type: list
    elements: str
  data_dir:
    description: Runtime data directory; default env C(SHADOWDESK_DATA_DIR), else C(~/.local/share/shadowdesk).
    type: path
  now:
    description: The moment to look at, ISO-8601 UTC. Default now.
    type: str
  days:
    description: How far back to look for the last connect and disconnect.
    type: int
    default: 14
  sources:
    description: Session sources that describe live connections.
    type: list
    elements: str
    default: [callback, flows]
  history_url:
    description: A shared PostgreSQL history store; default env C(SHADOWDESK_HISTORY_URL), else the SQLite file.
    type: str
  history_password:
    description: Password of the PostgreSQL login; default env C(SHADOWDESK_HISTORY_PASSWORD).
    type: str
"""

EXAMPLES = r"""
- name: Is alice connected, and when did she last come and go?
  ansible.builtin.debug:
    msg: "{{ query('shadowdesk.vdi.user_sessions', 'alice', data_dir='/var/lib/shadowdesk')[0] }}"
"""

RETURN = r"""
_raw:
  description: One dict per user, in the order given.
  type: list
  elements: dict
  contains:
    user:
      description: The user.
      type: str
    connected:
      description: A session is open at O(now).
      type: bool
    last_connect:
      description: Start of the last session that started at or before O(now) (ISO-8601 UTC) or null.
      type: str
    last_disconnect:
      description: End of the last session that ended at or before O(now) (ISO-8601 UTC) or null.
      type: str
"""

import datetime as _dt
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import format_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError


def session_summary(user, rows, now):
    """Open session, last connect and last disconnect of ``user`` at ``now`` from store session rows."""
    started = [r["start"] for r in rows if r["start"] <= now]
    ended = [r["end"] for r in rows if r["end"] is not None and r["end"] <= now]
    connected = any(r["start"] <= now and (r["end"] is None or r["end"] > now) for r in rows)
    return {"user": user, "connected": connected,
            "last_connect": format_time(max(started)) if started else None,
            "last_disconnect": format_time(max(ended)) if ended else None}


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        data_dir = os.path.expanduser(self.get_option("data_dir") or default_data_dir())
        users = [str(t) for t in terms]
        try:
            now = parse_time(self.get_option("now")) if self.get_option("now") else _dt.datetime.now(_dt.timezone.utc)
            since = now - _dt.timedelta(days=int(self.get_option("days")))
            sources = set(self.get_option("sources"))
            with HistoryStore.for_data_dir(data_dir, history_url=self.get_option("history_url"),
                                           password=self.get_option("history_password"), read_only=True) as store:
                out = []
                for user in users:
                    rows = [r for r in store.sessions(user=user, since=since, until=now + _dt.timedelta(seconds=1))
                            if r["source"] in sources]
                    out.append(session_summary(user, rows, now))
        except (ShadowDeskError, ValueError) as exc:
            raise AnsibleLookupError("user_sessions: %s" % exc) from None
        return out
