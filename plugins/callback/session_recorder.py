# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback that turns returned ``shadowdesk_event`` results into behaviour history.

The recorder must never be the reason a play fails or slows down: a user's reconnect is more important than its
bookkeeping. So every store failure is caught, warned about once, and the events are kept in memory and retried
(with back-off during the play, and once more at the end of the play). The store's own transactions guarantee
that what was already written stays intact.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: session_recorder
type: notification
short_description: Record ShadowDesk connect/disconnect events in the behaviour history store
version_added: 0.1.0
description:
  - Watches task results. Every successful result (or loop item) that contains a C(shadowdesk_event) dictionary,
    as returned by M(shadowdesk.vdi.session_event), is written to the history store
    C(<data_dir>/history.sqlite3). A C(connect) opens a session of the user on the desktop, a C(disconnect) closes
    it. These sessions feed the login forecasts.
  - "C(shadowdesk_event) keys: C(user), C(desktop), C(event) (V(connect) or V(disconnect)), C(at) (ISO-8601, optional:
    now), C(resources) (dict, optional). Events marked C(dry_run) (check mode) are ignored."
  - Every successful M(shadowdesk.vdi.desktop_info) result measured with C(utilisation=true) is written too, one
    utilisation sample per desktop (CPU % of the online vCPUs, the vCPU count, memory the guest uses, disk and
    network counters). These samples make the per-user resource profiles that size allocation plans.
  - If the store cannot be written (unwritable directory, database locked by another writer, corrupt file) the
    callback warns once and keeps the play going; events are buffered in memory and retried later in the play and
    at its end. Events that still cannot be written at the end are listed in a final warning.
  - Recording is idempotent, so the same event seen twice is stored once.
author:
  - ShadowDesk engineers (@shadowdesk)
requirements:
  - Enable it, for example C(callbacks_enabled = shadowdesk.vdi.session_recorder) in the C([defaults]) section of
    C(ansible.cfg) or E(ANSIBLE_CALLBACKS_ENABLED=shadowdesk.vdi.session_recorder).
options:
  data_dir:
    description:
      - Directory of the ShadowDesk runtime state; events go to C(<data_dir>/history.sqlite3).
    type: path
    default: ~/.local/share/shadowdesk
    env:
      - name: SHADOWDESK_DATA_DIR
    ini:
      - section: callback_session_recorder
        key: data_dir
  history_url:
    description:
      - A shared PostgreSQL history store (C(postgresql://user@host/db), libpq URL syntax) instead of the SQLite file
        of O(data_dir); the same store the C(history_url) option of M(shadowdesk.vdi.forecast) reads.
      - A server that is down or refuses the login is treated like a locked store (warn once, buffer, retry).
    type: str
    env:
      - name: SHADOWDESK_HISTORY_URL
    ini:
      - section: callback_session_recorder
        key: history_url
  history_password:
    description:
      - Password of the PostgreSQL login when it is not in O(history_url) (an AWX credential can inject the
        environment variable); libpq's C(PGPASSWORD) and C(~/.pgpass) work too.
    type: str
    env:
      - name: SHADOWDESK_HISTORY_PASSWORD
  lock_timeout:
    description:
      - Seconds to wait for another writer's lock on the store before buffering the event instead.
      - Kept short so a busy store never slows the play.
    type: float
    default: 0.5
    env:
      - name: SHADOWDESK_RECORDER_LOCK_TIMEOUT
    ini:
      - section: callback_session_recorder
        key: lock_timeout
  retry_interval:
    description:
      - After a failure, seconds to wait before trying the store again during the play (it is always tried once
        more at the end of the play).
    type: float
    default: 30
    env:
      - name: SHADOWDESK_RECORDER_RETRY_INTERVAL
    ini:
      - section: callback_session_recorder
        key: retry_interval
notes:
  - The callback only writes on the controller; it needs no access to managed hosts.
seealso:
  - module: shadowdesk.vdi.session_event
  - module: shadowdesk.vdi.history_import
"""

import json
import time

from ansible.plugins.callback import CallbackBase

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import (
    HistoryStore,
    StoreUnavailable,
    history_location,
    shown_location,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "shadowdesk.vdi.session_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._store = None
        self._pending = []          # events not yet written, in arrival order
        self._warned = False
        self._next_try = 0.0        # monotonic time before which the store is not tried again
        self._recorded = 0

    # -- ansible hooks --------------------------------------------------------------------------------------------
    def v2_runner_on_ok(self, result):
        try:
            payload = result._result
            items = payload.get("results") if isinstance(payload.get("results"), list) else [payload]
            for item in items:
                if not isinstance(item, dict) or item.get("failed"):
                    continue
                event = item.get("shadowdesk_event")
                if isinstance(event, dict) and not event.get("dry_run"):
                    self._pending.append(("event", _plain(event)))
                samples = utilisation_samples(item)
                if samples:
                    self._pending.append(("utilisation", _plain(samples)))
            if self._pending and time.monotonic() >= self._next_try:
                self._flush()
        except Exception as exc:  # pylint: disable=broad-except  # a recorder bug must not fail the play
            self._warn_once("ShadowDesk session_recorder: unexpected error %s; events are kept in memory" % exc)

    def v2_playbook_on_stats(self, stats):
        try:
            if self._pending:
                self._flush()
            if self._pending:
                self._display.warning(
                    "ShadowDesk session_recorder: %d event(s) could not be written to %s and are lost: %s"
                    % (len(self._pending), self._path(), json.dumps([e for _k, e in self._pending], sort_keys=True)))
                self._pending = []
            elif self._warned:
                self._display.display("ShadowDesk session_recorder: buffered events written to %s" % self._path())
        except Exception as exc:  # pylint: disable=broad-except  # as in v2_runner_on_ok: never fail the play
            self._display.warning("ShadowDesk session_recorder: unexpected error at the end of the play: %s" % exc)
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- internals ------------------------------------------------------------------------------------------------
    def _path(self):
        """Where events go (a PostgreSQL URL is shown without its password)."""
        return shown_location(self._location())

    def _location(self):
        return history_location(self.get_option("data_dir"), self.get_option("history_url"))

    def _flush(self):
        """Write buffered events in order; stop at the first store failure and keep the rest for later."""
        try:
            if self._store is None:
                self._store = HistoryStore(self._location(), timeout=float(self.get_option("lock_timeout")),
                                           password=self.get_option("history_password"))
            while self._pending:
                kind, event = self._pending[0]
                try:
                    if kind == "utilisation":
                        self._store.add_utilisation(event)
                    else:
                        self._store.record_event(event.get("user"), event.get("desktop"), event.get("event"),
                                                 at=event.get("at"), resources=event.get("resources"))
                    self._recorded += 1
                except StoreUnavailable:
                    raise
                except ShadowDeskError as exc:  # this event is malformed: retrying cannot help
                    self._display.warning("ShadowDesk session_recorder: ignoring event %s: %s"
                                          % (json.dumps(event, sort_keys=True), exc))
                self._pending.pop(0)
        except StoreUnavailable as exc:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._next_try = time.monotonic() + float(self.get_option("retry_interval"))
            self._warn_once("ShadowDesk session_recorder: history store unavailable (%s); events are kept in "
                            "memory and retried at the end of the play" % exc)

    def _warn_once(self, msg):
        if not self._warned:
            self._warned = True
            self._display.warning(msg)


def utilisation_samples(result):
    """Utilisation samples in a ``desktop_info`` result (run with ``utilisation: true``), as the store takes them.

    This is how the behaviour history gets its utilisation: any play that measures desktops feeds the profiles.
    """
    samples = []
    for desktop in result.get("desktops") or []:
        use = desktop.get("utilisation") if isinstance(desktop, dict) else None
        if not isinstance(use, dict) or not use.get("sampled_at"):
            continue
        memory = use.get("memory") or {}
        used = memory.get("actual_mib")
        if used is not None and memory.get("unused_mib") is not None:
            used = used - memory["unused_mib"]  # what the guest really uses, not what the balloon gives it
        samples.append({
            "desktop": desktop.get("name"), "user": desktop.get("user"), "sampled_at": use["sampled_at"],
            "cpu_percent": use.get("cpu_percent"), "memory_mib": used,
            "vcpus": (desktop.get("live") or {}).get("vcpus"),
            "disk_read_bytes": _total(use.get("disks"), "rd_bytes"),
            "disk_write_bytes": _total(use.get("disks"), "wr_bytes"),
            "net_rx_bytes": _total(use.get("nets"), "rx_bytes"),
            "net_tx_bytes": _total(use.get("nets"), "tx_bytes"),
        })
    return samples


def _total(devices, key):
    values = [d.get(key) for d in (devices or {}).values() if isinstance(d, dict) and d.get(key) is not None]
    return sum(values) if values else None


def _plain(value):
    """Ansible's tagged/lazy values -> plain JSON types (the event may outlive the task's templar)."""
    return json.loads(json.dumps(value, default=str))
