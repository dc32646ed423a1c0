# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: measured reconnects (table ``wake_timings``), written by the reconnect flow, read by the plans.

One row per reconnect: which path it took (``hit`` = already warm, ``paused``, ``saved``, ``cold``), the
hypervisor times alone (``wake_s``: resume / restore / boot; ``resize_s``: the hot-plug to full size) and the
end-to-end times from the trigger (``ready_s``, ``full_s``).
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    format_time, load_time, parse_time,
)

WAKE_PATHS = ("hit", "paused", "saved", "cold")
TIMING_FIELDS = ("ready_s", "full_s", "wake_s", "resize_s")


def _seconds(value, name):
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("%s must be a number of seconds, got %r" % (name, value)) from None
    if number < 0:
        raise InvalidInput("%s must be >= 0, got %r" % (name, value))
    return number


class WakeTimingTables:
    """Mixin of HistoryStore: reads and writes of ``wake_timings``."""

    def add_wake_timing(self, timing):
        """Store ``{user, desktop, backend, node, path, trigger_at, ready_s, full_s, wake_s, resize_s}``.
        Returns ``"recorded"`` or ``"duplicate"`` (same desktop and trigger time)."""
        for key in ("user", "desktop", "backend"):
            if not timing.get(key):
                raise InvalidInput("a wake timing needs %s" % key)
        if timing.get("path") not in WAKE_PATHS:
            raise InvalidInput("path must be one of %s, got %r" % (", ".join(WAKE_PATHS), timing.get("path")))
        try:
            trigger = format_time(parse_time(timing.get("trigger_at")))
        except ValueError as exc:
            raise InvalidInput("trigger_at: %s" % exc) from None
        values = [_seconds(timing.get(k), k) for k in TIMING_FIELDS]
        with self._write() as tx:
            cur = tx.execute(
                'INSERT INTO wake_timings ("user", desktop, backend, node, path, trigger_utc, %s) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING" % ", ".join(TIMING_FIELDS),
                [timing["user"], timing["desktop"], timing["backend"], timing.get("node"), timing["path"], trigger]
                + values)
        return "recorded" if cur.rowcount else "duplicate"

    def wake_timings(self, backend=None, since=None):
        """Rows newest first."""
        sql = ('SELECT "user", desktop, backend, node, path, trigger_utc, %s FROM wake_timings WHERE 1 = 1'
               % ", ".join(TIMING_FIELDS))
        params = []
        if backend is not None:
            sql += " AND backend = ?"
            params.append(backend)
        if since is not None:
            sql += " AND trigger_utc >= ?"
            params.append(format_time(parse_time(since)))
        out = []
        for r in sorted(self._query(sql, params), key=lambda r: r[5], reverse=True):
            item = {"user": r[0], "desktop": r[1], "backend": r[2], "node": r[3], "path": r[4],
                    "trigger_at": load_time(r[5])}
            item.update(zip(TIMING_FIELDS, r[6:]))
            out.append(item)
        return out
