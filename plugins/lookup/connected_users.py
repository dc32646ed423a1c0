# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: connected_users
short_description: Users with an open session in the ShadowDesk history store
version_added: 0.1.0
author:
  - ShadowDesk engineers (@shadowdesk)
description:
  - Returns the users whose desktop session is open at O(now) according to the behaviour history store
    (C(<data_dir>/history.sqlite3)), counting only live sources (by default the C(callback) source written by the
    C(shadowdesk.vdi.session_recorder) callback from M(shadowdesk.vdi.session_event) connect/disconnect events).
  - The C(shadowdesk.vdi.apply_plan) role uses it so that a planned release never saves or shrinks the desktop of
    a user who is connected; that desktop is released by the disconnect instead.
  - A missing store means nobody is known to be connected (an empty list), not an error.
  - Use it with C(query) (or C(lookup(..., wantlist=true))) to get a list.
options:
  data_dir:
    description: Runtime data directory; default env C(SHADOWDESK_DATA_DIR), else C(~/.local/share/shadowdesk).
    type: path
  history_url:
    description:
      - A shared PostgreSQL history store (C(postgresql://...)); default env C(SHADOWDESK_HISTORY_URL), else the
        SQLite file of O(data_dir). The password can come from C(SHADOWDESK_HISTORY_PASSWORD) or libpq's
        C(PGPASSWORD).
    type: str
    env:
      - name: SHADOWDESK_HISTORY_URL
  now:
    description: The moment to look at, ISO-8601 UTC. Default now.
    type: str
  sources:
    description: Session sources that describe live connections.
    type: list
    elements: str
    default: [callback]
"""

EXAMPLES = r"""
- name: Who is connected right now?
  ansible.builtin.debug:
    msg: "{{ query('shadowdesk.vdi.connected_users', data_dir='/var/lib/shadowdesk') }}"
"""

RETURN = r"""
_raw:
  description: User names with an open session, sorted.
  type: list
  elements: str
"""

import datetime as _dt
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore, db_path, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        data_dir = os.path.expanduser(self.get_option("data_dir") or default_data_dir())
        url = self.get_option("history_url")
        if not url and not os.path.exists(db_path(data_dir)):
            return []
        try:
            now = parse_time(self.get_option("now")) if self.get_option("now") else _dt.datetime.now(_dt.timezone.utc)
            sources = set(self.get_option("sources"))
            with HistoryStore.for_data_dir(data_dir, history_url=url, read_only=True) as store:
                rows = store.sessions(since=now, until=now + _dt.timedelta(seconds=1))
        except (ShadowDeskError, ValueError) as exc:
            raise AnsibleLookupError("connected_users: %s" % exc) from None
        return sorted({r["user"] for r in rows if r["end"] is None and r["source"] in sources})
