# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: sessions and live connect/disconnect events (tables ``sessions``, ``events``).

Imports are idempotent: a session is identified by ``(user, start_utc, source)``; re-importing the same file adds
nothing, and a row that closes a session stored as open updates it. Bad rows are counted per reason in an
:class:`ImportReport` and everything else commits in one transaction.
"""

from __future__ import annotations

import datetime
import json

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.import_report import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    UTC, format_time, load_time, opt_time, parse_time,
)

EVENTS = ("connect", "disconnect")


class SessionTables:
    """Mixin of HistoryStore: reads and writes of ``sessions`` and ``events``."""

    def add_sessions(self, rows, source, dry_run=False):
        """Store session rows (contract: user, desktop, start, end, tz_offset_min; optional ``line``).

        Returns an ImportReport. ``dry_run`` runs every check inside the transaction and rolls it back, so check
        mode reports exactly what a real run would do.
        """
        if not source:
            raise InvalidInput("add_sessions needs a source name")
        report = ImportReport(read=len(rows), parsed=len(rows))
        with self._write(dry_run) as tx:
            for row in rows:
                self._add_session(tx, row, source, report)
        return report

    def _add_session(self, tx, row, source, report):
        line = row.get("line")
        user = row.get("user")
        if not user or not isinstance(user, str):
            report.reject("missing_user", line, row.get("user"))
            return
        try:
            start = format_time(parse_time(row.get("start")))
            end = opt_time(row.get("end"))
        except ValueError as exc:
            report.reject("bad_time", line, exc)
            return
        if end is not None and end < start:
            report.reject("end_before_start", line, "%s < %s" % (end, start))
            return
        tz = row.get("tz_offset_min")
        if tz is not None:
            try:
                tz = int(tz)
            except (TypeError, ValueError):
                tz = 99999
            if not -1440 < tz < 1440:
                report.reject("bad_tz_offset", line, row.get("tz_offset_min"))
                return
        desktop = row.get("desktop") or None
        found = tx.execute('SELECT id, end_utc FROM sessions WHERE "user" = ? AND start_utc = ? AND source = ?',
                           (user, start, source)).fetchone()
        if found is not None:
            if found[1] == end:
                report.duplicates += 1
            elif found[1] is None and not self._overlaps(tx, user, desktop, source, start, end, found[0]):
                tx.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (end, found[0]))
                report.updated += 1
            else:
                detail = "%s %s already stored with end %s" % (user, start, found[1])
                report.reject("conflicting_duplicate", line, detail)
            return
        if self._overlaps(tx, user, desktop, source, start, end):
            report.reject("overlap", line, "%s on %s %s..%s overlaps a stored session" % (user, desktop, start, end))
            return
        tx.execute('INSERT INTO sessions ("user", desktop, start_utc, end_utc, source, tz_offset_min) '
                   "VALUES (?, ?, ?, ?, ?, ?)", (user, desktop, start, end, source, tz))
        report.added += 1

    @staticmethod
    def _overlaps(tx, user, desktop, source, start, end, exclude_id=None):
        """A user cannot hold the same desktop twice at once (per source): such rows are overlapping duplicates."""
        row = tx.execute(
            'SELECT 1 FROM sessions WHERE "user" = ? AND desktop IS NOT DISTINCT FROM ? AND source = ? '
            "AND id IS DISTINCT FROM ? AND start_utc < ? AND (end_utc IS NULL OR end_utc > ?) LIMIT 1",
            (user, desktop, source, exclude_id, end if end is not None else "9999", start)).fetchone()
        return row is not None

    def sessions(self, user=None, since=None, until=None):
        """Sessions overlapping [since, until) (open sessions count as still running), ordered by user, start."""
        sql = 'SELECT "user", desktop, start_utc, end_utc, source, tz_offset_min FROM sessions WHERE 1 = 1'
        params = []
        if user is not None:
            sql += ' AND "user" = ?'
            params.append(user)
        if since is not None:
            sql += " AND (end_utc IS NULL OR end_utc >= ?)"
            params.append(format_time(parse_time(since)))
        if until is not None:
            sql += " AND start_utc < ?"
            params.append(format_time(parse_time(until)))
        # Sorted here, not in SQL: a PostgreSQL database's collation would order user names differently.
        rows = sorted(self._query(sql, params), key=lambda r: (r[0], r[2], r[4]))
        return [{"user": r[0], "desktop": r[1], "start": load_time(r[2]), "end": load_time(r[3]), "source": r[4],
                 "tz_offset_min": r[5]} for r in rows]

    def users(self):
        return sorted(r[0] for r in self._query('SELECT DISTINCT "user" FROM sessions'))

    def record_event(self, user, desktop, event, at=None, resources=None, source="callback", tz_offset_min=None):
        """Store one connect/disconnect and keep ``sessions`` in step with it.

        ``connect`` opens a session (closing a still-open one of the same user+desktop at this time: its
        disconnect was lost); ``disconnect`` closes the open one. Recording the same event twice is a no-op, so a
        retried flush cannot double count. Returns ``{"event": "recorded"|"duplicate", "session": outcome}``.
        """
        if event not in EVENTS:
            raise InvalidInput("event must be one of %s, got %r" % (", ".join(EVENTS), event))
        if not user or not desktop:
            raise InvalidInput("an event needs both user and desktop", user=user, desktop=desktop)
        try:
            at_s = format_time(parse_time(at) if at is not None else datetime.datetime.now(UTC))
        except ValueError as exc:
            raise InvalidInput("bad event time: %s" % exc) from None
        res = json.dumps(resources, sort_keys=True, default=str) if resources is not None else None
        with self._write() as tx:
            cur = tx.execute('INSERT INTO events ("user", desktop, event, at_utc, resources, source) '
                             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (user, desktop, event, at_s, res, source))
            if cur.rowcount == 0:
                return {"event": "duplicate", "session": "unchanged", "at": load_time(at_s)}
            open_row = tx.execute(
                'SELECT id, start_utc FROM sessions WHERE "user" = ? AND desktop IS NOT DISTINCT FROM ? '
                "AND source = ? AND end_utc IS NULL ORDER BY start_utc DESC LIMIT 1",
                (user, desktop, source)).fetchone()
            outcome = self._apply_event(tx, event, open_row, (user, desktop, at_s, source, tz_offset_min))
        return {"event": "recorded", "session": outcome, "at": load_time(at_s)}

    @staticmethod
    def _apply_event(tx, event, open_row, values):
        at_s = values[2]
        if event == "disconnect":
            if open_row is None or open_row[1] > at_s:
                return "no_open_session"
            tx.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (at_s, open_row[0]))
            return "closed"
        outcome = "opened"
        if open_row is not None:
            if open_row[1] >= at_s:
                return "already_open"
            tx.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (at_s, open_row[0]))
            outcome = "superseded_and_opened"
        tx.execute('INSERT INTO sessions ("user", desktop, start_utc, end_utc, source, tz_offset_min) '
                   "VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING", values)
        return outcome
